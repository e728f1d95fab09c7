"""Opponent-shaping gradients on the exact games against central finite differences
(float64), the differentiable optax step, SOS and the tandem game."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pain_jax.learn import exact_games as eg
from pain_jax.learn import exact_learners as el
from pain_jax.learn import optim

H = 1e-5  # central-difference step (float64)


def central_fd(f, x):
    eye = np.eye(x.size)
    return np.array([(f(x + H * e) - f(x - H * e)) / (2 * H) for e in eye])


def rel_err(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


@pytest.fixture(scope="module", params=["ipd", "imp"])
def setup64(request):
    with jax.enable_x64(True):
        game = eg.matrix_game(request.param, dtype=jnp.float64)
        th = jax.random.normal(jax.random.key(7), (2, 5), jnp.float64)
        yield game, th[0], th[1]


def test_lola_shaping__matches_central_finite_differences(setup64):
    game, mine, theirs = setup64
    with jax.enable_x64(True):
        # the shaping term is d/dtheta1 of c . grad_2 V2(theta1, theta2), c = grad_2 V1
        c = jax.grad(lambda t: game.values(mine, t)[0])(theirs)
        grad2_v2 = jax.jit(jax.grad(lambda t, m: game.values(m, t)[1]))
        fd = central_fd(lambda m: float(jnp.vdot(c, grad2_v2(theirs, m))), mine)
        got = el.lola_shaping(game, mine, theirs)
        assert rel_err(got, fd) < 1e-3
        # and LOLA = naive + eta * shaping
        lola = el.direction(el.Learner(kind="lola", opp_lr=0.3), game, mine, theirs)
        naive = el.naive_grad(game, mine, theirs)
        np.testing.assert_allclose(lola, naive + 0.3 * got, rtol=1e-12)


@pytest.mark.parametrize("steps", [1, 3])
def test_lookahead__gradient_through_k_opponent_steps_matches_fd(setup64, steps):
    game, mine, theirs = setup64
    with jax.enable_x64(True):
        eta = 0.5
        obj = jax.jit(lambda m: el.lookahead_objective(game, m, theirs, eta, steps))
        fd = central_fd(lambda m: float(obj(m)), mine)
        learner = el.Learner(kind="lookahead", steps=steps, opp_lr=eta)
        got = el.direction(learner, game, mine, theirs)
        assert rel_err(got, fd) < 1e-3


def test_hola2__gradient_matches_fd_and_differs_from_first_order(setup64):
    game, mine, theirs = setup64
    with jax.enable_x64(True):
        eta = 0.5
        obj = jax.jit(lambda m: el.hola_objective(game, m, theirs, eta, 2))
        fd = central_fd(lambda m: float(obj(m)), mine)
        got = el.direction(
            el.Learner(kind="hola", steps=2, opp_lr=eta), game, mine, theirs
        )
        assert rel_err(got, fd) < 1e-3
        first = el.direction(
            el.Learner(kind="hola", steps=1, opp_lr=eta), game, mine, theirs
        )
        la1 = el.direction(el.Learner(kind="lookahead", opp_lr=eta), game, mine, theirs)
        np.testing.assert_allclose(first, la1, rtol=1e-10)  # order 1 == look-ahead 1
        assert rel_err(got, np.asarray(first)) > 1e-3


def test_opponent_after__unrolls_naive_sgd_steps(setup64):
    game, mine, theirs = setup64
    with jax.enable_x64(True):
        eta = 0.7
        after = el.opponent_after(game, mine, theirs, eta, 1)
        g = jax.grad(lambda t: game.values(mine, t)[1])(theirs)
        np.testing.assert_allclose(after, theirs + eta * g, rtol=1e-12)
        # two steps: the second gradient is taken at the moved opponent
        two = el.opponent_after(game, mine, theirs, eta, 2)
        g2 = jax.grad(lambda t: game.values(mine, t)[1])(after)
        np.testing.assert_allclose(two, after + eta * g2, rtol=1e-12)


def test_ascent_step__adam_unrolls_and_differentiates():
    # a quadratic my-objective whose optimum depends on another parameter w
    def inner(w):
        run = optim.unrolled(optax.adam(0.1), 5)
        return run(jnp.zeros(3), lambda p: -jnp.sum((p - w) ** 2))

    inner = jax.jit(inner)
    w = jnp.array([1.0, -2.0, 0.5])
    out = inner(w)
    assert np.all(np.sign(np.asarray(out)) == np.sign(np.asarray(w)))  # moved towards w
    jac = jax.jit(jax.jacobian(inner))(w)
    assert np.all(np.isfinite(np.asarray(jac)))


def test_tandem__lola_fixed_point_is_hand_computed_and_sos_keeps_x_plus_y_one():
    game = eg.TandemGame()
    alpha = 0.1
    s = 1.0 / (1.0 - 2.0 * alpha)  # LOLA's fixed point: 2s - 2 - 4 alpha s = 0
    x = jnp.array([0.3 * s])
    y = jnp.array([0.7 * s])
    lola = el.Learner(kind="lola", lr=alpha, opp_lr=alpha)
    np.testing.assert_allclose(el.direction(lola, game, x, y), 0.0, atol=1e-6)
    # at x + y = 1 naive and SOS are at rest, LOLA is pushed away (upwards)
    x1, y1 = jnp.array([0.4]), jnp.array([0.6])
    sos = el.Learner(kind="sos", lr=alpha, opp_lr=alpha)
    assert abs(float(el.direction(el.Learner(), game, x1, y1)[0])) < 1e-6
    assert abs(float(el.direction(sos, game, x1, y1)[0])) < 1e-6
    assert float(el.direction(lola, game, x1, y1)[0]) > 0.1


def test_sos__p_is_one_far_from_fixed_points_hand_computed():
    # far from the fixed points p = 1: SOS = look-ahead + full LOLA shaping term
    game = eg.TandemGame()
    x, y = jnp.array([2.0]), jnp.array([1.5])
    a = 0.1
    sos = el.direction(el.Learner(kind="sos", opp_lr=a), game, x, y)
    # hand: L1 = (x+y)^2 - 2x; xi = 2s - 2; H_o xi term: d/dx[(2s)(2s - 2)] = 4(2s - 2)
    s = 3.5
    xi, la, chi = 2 * s - 2, 2 * (2 * s - 2), 2 * 2 * s
    want = -((xi - a * la) - a * chi)
    np.testing.assert_allclose(sos, [want], rtol=1e-5)


def test_learner__rejects_unknown_kind_and_missing_strategy():
    with pytest.raises(ValueError, match="unknown learner kind"):
        el.Learner(kind="sgd")
    with pytest.raises(ValueError, match="strategy"):
        el.Learner(kind="fixed")
    with pytest.raises(ValueError, match="steps"):
        el.Learner(kind="lookahead", steps=0)


def test_fixed_learner__recovers_probabilities():
    fixed = el.fixed_learner([1, 1, 0, 1, 0])
    np.testing.assert_allclose(jax.nn.sigmoid(fixed.strategy), [1, 1, 0, 1, 0], atol=2e-6)
