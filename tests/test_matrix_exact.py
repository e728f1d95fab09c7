"""Exact values of memory-one policies: hand values, an independent numpy chain,
symmetry, gradients (finite differences) and vmap/jit behaviour."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pain_jax.envs import matrix_exact as mx
from pain_jax.envs.payoffs import PAYOFFS, STRATEGIES

IPD = mx.exact_params("ipd")


def numpy_values(p1, p2, table, gamma, horizon=3000):
    """Independent computation: push the distribution over (a1, a2) forward round by
    round (long truncated sum), every probability looked up from each player's own
    view with explicit loops."""
    p1, p2 = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
    table = np.asarray(table, np.float64)

    def coop(p, own, other):  # own-view memory-one state: 1 + 2 * own + other
        return p[1 + 2 * own + other]

    dist = np.zeros((2, 2))
    for a1 in range(2):
        for a2 in range(2):
            dist[a1, a2] = (p1[0] if a1 == 0 else 1 - p1[0]) * (
                p2[0] if a2 == 0 else 1 - p2[0]
            )
    total = np.zeros(2)
    for t in range(horizon):
        total += gamma**t * np.einsum("ab,abi->i", dist, table)
        new = np.zeros((2, 2))
        for a1 in range(2):
            for a2 in range(2):
                c1, c2 = coop(p1, a1, a2), coop(p2, a2, a1)
                for b1 in range(2):
                    for b2 in range(2):
                        new[b1, b2] += (
                            dist[a1, a2]
                            * (c1 if b1 == 0 else 1 - c1)
                            * (c2 if b2 == 0 else 1 - c2)
                        )
        dist = new
    return total


@pytest.mark.parametrize("game", ["ipd", "imp", "chicken", "stag_hunt"])
def test_exact_values__match_independent_numpy_chain(game):
    rng = np.random.default_rng(3)
    table, gamma = PAYOFFS[game]
    params = mx.exact_params(game)
    for _ in range(3):
        p1, p2 = rng.uniform(0.02, 0.98, (2, 5))
        got = np.asarray(mx.exact_values(jnp.asarray(p1), jnp.asarray(p2), params))
        want = numpy_values(p1, p2, table, gamma)
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize(
    ("me", "other", "expected"),
    [
        # first round D vs C (0, -3), then DD forever: (1-g)*(-2 g/(1-g)) = -2 g
        ("always_defect", "tit_for_tat", (-2 * 0.96, -3 * 0.04 - 2 * 0.96)),
        ("tit_for_tat", "tit_for_tat", (-1.0, -1.0)),
        ("always_cooperate", "always_defect", (-3.0, 0.0)),
        ("grim_trigger", "always_cooperate", (-1.0, -1.0)),
        # random vs random: each joint outcome 1/4 every round
        ("random", "random", (-1.5, -1.5)),
    ],
)
def test_average_rewards__hand_computed_ipd(me, other, expected):
    got = mx.average_rewards(
        jnp.asarray(STRATEGIES[me]), jnp.asarray(STRATEGIES[other]), IPD
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_cooperation_rates__hand_computed():
    tft, alld = (
        jnp.asarray(STRATEGIES["tit_for_tat"]),
        jnp.asarray(STRATEGIES["always_defect"]),
    )
    # TFT cooperates only in round 0: (1 - gamma) * 1
    np.testing.assert_allclose(
        mx.cooperation_rates(tft, alld, 0.96), [0.04, 0.0], atol=1e-6
    )
    np.testing.assert_allclose(
        mx.cooperation_rates(tft, tft, 0.96), [1.0, 1.0], atol=1e-6
    )


def test_discounted_occupancy__sums_to_horizon():
    p = jax.nn.sigmoid(jax.random.normal(jax.random.key(0), (2, 5)))
    occ = mx.discounted_occupancy(p[0], p[1], 0.9)
    np.testing.assert_allclose(occ.sum(), 10.0, rtol=1e-5)
    assert np.all(np.asarray(occ) > 0)


probs5 = st.lists(st.floats(0.0, 1.0), min_size=5, max_size=5)


@settings(max_examples=25, deadline=None)
@given(probs5, probs5, st.sampled_from(["ipd", "imp", "chicken", "stag_hunt"]))
def test_swap_players__mirrors_values(p1, p2, game):
    params = mx.exact_params(game)
    p1, p2 = jnp.asarray(p1, jnp.float32), jnp.asarray(p2, jnp.float32)
    ab = mx.exact_values(p1, p2, params)
    ba = mx.exact_values(p2, p1, mx.swap_players(params))
    np.testing.assert_allclose(ba, ab[::-1], rtol=1e-4, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(probs5, probs5)
def test_exact_values__imp_is_zero_sum_and_bounded(p1, p2):
    params = mx.exact_params("imp")
    r = mx.average_rewards(jnp.asarray(p1), jnp.asarray(p2), params)
    assert abs(float(r[0] + r[1])) < 1e-4
    assert np.all(np.abs(np.asarray(r)) <= 1.0 + 1e-4)


def test_exact_values__gradients_match_central_finite_differences():
    with jax.enable_x64(True):
        params = mx.exact_params("ipd", dtype=jnp.float64)
        key = jax.random.key(1)
        th = jax.random.normal(key, (2, 5), jnp.float64)

        def f(flat):
            t, pay, gamma = flat[:10].reshape(2, 5), flat[10:18], flat[18]
            p = mx.ExactGameParams(payoffs=pay.reshape(2, 2, 2), gamma=gamma)
            return mx.exact_values_from_logits(t[0], t[1], p)[0]

        x = jnp.concatenate([th.ravel(), params.payoffs.ravel(), params.gamma[None]])
        grad = np.asarray(jax.grad(f)(x))
        h = 1e-6
        eye = np.eye(x.size)
        fd = np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in eye])
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)


def test_exact_values__vmap_4096_pairs_and_jit_once():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def batch(t1, t2, params):
        return jax.vmap(mx.exact_values_from_logits, in_axes=(0, 0, None))(t1, t2, params)

    k1, k2 = jax.random.split(jax.random.key(0))
    t1 = jax.random.normal(k1, (4096, 5))
    t2 = jax.random.normal(k2, (4096, 5))
    out = batch(t1, t2, IPD)
    assert out.shape == (4096, 2) and out.dtype == jnp.float32
    np.testing.assert_allclose(
        out[7], mx.exact_values_from_logits(t1[7], t2[7], IPD), rtol=1e-5
    )
    batch(t2, t1, IPD.replace(gamma=jnp.float32(0.5)))  # new values: no retrace
    chex.clear_trace_counter()


def test_exact_params__vmap_over_gamma_sweep():
    gammas = jnp.array([0.0, 0.5, 0.9])
    params = jax.vmap(lambda g: IPD.replace(gamma=g))(gammas)
    alld, tft = (
        jnp.asarray(STRATEGIES["always_defect"]),
        jnp.asarray(STRATEGIES["tit_for_tat"]),
    )
    r = jax.vmap(mx.average_rewards, in_axes=(None, None, 0))(alld, tft, params)
    # -2 gamma for always-defect against tit-for-tat, whatever gamma
    np.testing.assert_allclose(r[:, 0], -2 * gammas, atol=1e-5)


def test_exact_params__rejects_bad_input():
    with pytest.raises(KeyError, match="known: ipd"):
        mx.exact_params("poker")
    with pytest.raises(ValueError, match="gamma"):
        mx.exact_params("ipd", gamma=1.0)
    with pytest.raises(ValueError, match="shape"):
        mx.exact_params("ipd", payoffs=np.zeros((2, 2)))
    with pytest.raises(TypeError, match="unknown"):
        mx.exact_params("ipd", discount=0.9)
