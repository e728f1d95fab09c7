"""LOLA-DiCE with neural policies in the shared loop (``algorithm="lola_dice"``):
episode-aware DiCE pieces by hand, the look-ahead gradient against finite
differences, the shaping cross-derivative, ``k = 0`` / ``eta = 0`` as the naive DiCE
policy gradient, the detached baseline (C17), config checks, and one jitted update
on Coin Game and the IPD with every pain mode (one compile each)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pain_jax.learn.config import TrainConfig
from pain_jax.learn.lola_shaping import (
    episode_cumsum,
    make_objectives,
    steps_in_episode,
    weighted_dice,
)
from pain_jax.learn.ppo import AgentBatch
from pain_jax.learn.train import make_train, make_trainer
from pain_jax.pain.dynamics import DROPOUT, NOISE, OFF

# ----- episode-aware pieces, by hand ------------------------------------------------


def test_episode_cumsum__restarts_at_every_reset():
    x = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
    reset = jnp.array([False, False, True, False, True])
    # rollout starts mid-episode: 1, 1+2; reset: 3, 3+4; reset: 5
    np.testing.assert_allclose(episode_cumsum(x, reset), [1, 3, 3, 7, 5])


def test_steps_in_episode__counts_from_reset_or_rollout_start():
    reset = jnp.array([False, False, True, False, True, False])
    np.testing.assert_array_equal(steps_in_episode(reset), [0, 1, 0, 1, 0, 1])


def test_weighted_dice__hand_computed_importance_weights():
    # One env, 3 steps, an episode starts at t = 2; log-ratios 0.1, 0.2, 0.3;
    # A = 1, 2, 3; gamma 0.5.  W = 0.1, 0.3, 0.3 (restart); W_before = 0, 0.1, 0.
    # J = 1 * 1 * (e^.1 - 1) + 0.5 * 2 * (e^.3 - e^.1) + 1 * 3 * (e^.3 - 1).
    lr = jnp.array([[0.1], [0.2], [0.3]])
    adv = jnp.array([[1.0], [2.0], [3.0]])
    reset = jnp.array([[True], [False], [True]])
    e = np.exp
    expected = np.sum([e(0.1) - 1, 0.5 * 2 * (e(0.3) - e(0.1)), 3 * (e(0.3) - 1)])
    np.testing.assert_allclose(weighted_dice(lr, adv, reset, 0.5), expected, rtol=1e-5)


def test_weighted_dice__at_behaviour_is_the_magic_box_gradient():
    # With log_ratio = l - stop(l) the first derivative is gamma^c A dl / E.
    reset = jnp.array([[True, False], [False, False], [True, False]])
    adv = jnp.array([[1.0, -2.0], [0.5, 1.0], [2.0, 3.0]])

    def f(lp):
        return weighted_dice(lp - jax.lax.stop_gradient(lp), adv, reset, 0.9)

    grad = jax.grad(f)(jnp.full((3, 2), -0.7))
    disc = 0.9 ** np.array([[0, 0], [1, 1], [0, 2]])
    np.testing.assert_allclose(grad, disc * adv / 2, rtol=1e-6)


# ----- the look-ahead on a tiny MLP -------------------------------------------------

T, E = 4, 3


@functools.cache
def tiny(A: int = 2):
    """(policy, variables (A, ...), batch, pain, advantage (A, T, E)) on IPD-shaped
    observations of ``A`` agents; the batch's behaviour log-probs are those of
    ``variables``."""
    config = TrainConfig(env="ipd", hidden=(4,), pain_mode="off")
    trainer = make_trainer(config)
    policy, pain = trainer.policy, trainer.env_params.pain
    k = jax.random.split(jax.random.key(0), 8)
    obs0 = jnp.zeros((1, 5), jnp.float32)
    init = jax.jit(jax.vmap(lambda key: policy.init(key, obs0, pain)))
    variables = init(jax.random.split(k[0], A))
    obs = jax.nn.one_hot(jax.random.randint(k[2], (A, T, E), 0, 5), 5)
    reset = jnp.zeros((T, E), bool).at[0].set(True).at[2, 1].set(True)
    batch = AgentBatch(
        obs=obs,
        action=jax.random.randint(k[3], (A, T, E), 0, 2),
        reset=jnp.broadcast_to(reset, (A, T, E)),
        log_prob=jnp.zeros((A, T, E)),
        pain_level=jnp.zeros((A, T, E)),
        pain_key=jax.random.key_data(jax.random.split(k[4], (A, T, E))),
        advantage=jnp.zeros((A, T, E)),
        target=jnp.zeros((A, T, E)),
        carry=jnp.zeros((A, E, 0)),
    )
    objectives, _, _ = make_objectives(policy, 0.9, 0.0, 0)
    log_prob = jax.jit(objectives)(variables, batch, pain, batch.advantage)[1][0]
    batch = batch.replace(log_prob=log_prob)
    advantage = jax.random.normal(k[5], (A, T, E))
    return policy, variables, batch, pain, advantage


@functools.cache
def shaped_fns(lookahead: int):
    """Jitted ``(value_and_grad, ahead_jvp)`` of agent 0's shaped objective for a
    ``lookahead``, each taking the inner learning rate traced (one compile serves
    every rate) and ``theta_0``."""
    policy, variables, batch, pain, advantage = tiny()

    def parts(inner_lr):
        _, look, shaped = make_objectives(policy, 0.9, inner_lr, lookahead)

        def objective(theta):
            return shaped(theta, variables, 0, batch, pain, advantage)[0]

        def ahead(theta):
            rows = jax.tree.map(lambda v, t: v.at[0].set(t), variables, theta)
            return look(rows, 0, batch, pain, advantage)

        return objective, ahead

    value_and_grad = jax.jit(lambda lr, th: jax.value_and_grad(parts(lr)[0])(th))
    ahead_jvp = jax.jit(lambda lr, th, d: jax.jvp(parts(lr)[1], (th,), (d,)))
    return value_and_grad, ahead_jvp


def theta0():
    return jax.tree.map(lambda v: v[0], tiny()[1])


def _direction(theta, seed):
    leaves, tree = jax.tree.flatten(theta)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return tree.unflatten(
        [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    )


def _dot(a, b):
    return sum(
        jnp.vdot(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_shaped_objective__gradient_matches_finite_differences():
    # A look-ahead step of size 0.5: the gradient flows through theta_j'(theta_i);
    # away from theta_i the importance weights make the value move, so central
    # differences of the value check the gradient.
    value_and_grad, _ = shaped_fns(1)
    theta = theta0()
    _, g = value_and_grad(0.5, theta)
    eps = 3e-3
    for seed in (1, 2):
        d = _direction(theta, seed)
        plus = value_and_grad(0.5, jax.tree.map(lambda t, u: t + eps * u, theta, d))[0]
        minus = value_and_grad(0.5, jax.tree.map(lambda t, u: t - eps * u, theta, d))[0]
        fd = (plus - minus) / (2 * eps)
        analytic = _dot(g, d)
        assert abs(float(analytic)) > 1e-3  # not a vacuous comparison
        np.testing.assert_allclose(analytic, fd, rtol=1e-2)


def test_look_ahead__opponent_step_depends_on_the_learner():
    # d theta_j' / d theta_i != 0 (the shaping cross-derivative), the learner's own
    # row is not stepped; with eta = 0 the opponent neither moves nor depends on i.
    _, ahead_jvp = shaped_fns(1)
    theta, variables = theta0(), tiny()[1]
    d = _direction(theta, 3)
    for inner_lr, nonzero in ((1.0, True), (0.0, False)):
        rows, tangent = ahead_jvp(inner_lr, theta, d)
        cross = jnp.sqrt(sum(jnp.sum(x[1] ** 2) for x in jax.tree.leaves(tangent)))
        assert (float(cross) > 1e-4) == nonzero, inner_lr
        moved = max(
            float(jnp.max(jnp.abs(r[1] - v[1])))
            for r, v in zip(
                jax.tree.leaves(rows), jax.tree.leaves(variables), strict=True
            )
        )
        assert (moved > 1e-3) == nonzero, inner_lr
        for r, t in zip(jax.tree.leaves(rows), jax.tree.leaves(theta), strict=True):
            np.testing.assert_array_equal(r[0], t)  # row i = theta_i
        for x, v in zip(jax.tree.leaves(tangent), jax.tree.leaves(d), strict=True):
            np.testing.assert_allclose(x[0], v, rtol=1e-6)


def test_shaped_objective__without_look_ahead_is_the_naive_dice_gradient():
    # k = 0 or eta = 0: at the behaviour parameters (w = 1) the gradient is the
    # naive DiCE policy gradient mean_e sum_t gamma^c A_t d log pi_i(a_t), written
    # here independently of the objective.
    policy, variables, batch, pain, advantage = tiny()
    objectives, _, _ = make_objectives(policy, 0.9, 0.0, 0)
    theta = theta0()

    @jax.jit
    def naive(th):
        def f(th):
            rows = jax.tree.map(lambda v, t: v.at[0].set(t), variables, th)
            log_prob = objectives(rows, batch, pain, advantage)[1][0][0]
            disc = 0.9 ** steps_in_episode(batch.reset[0])
            return jnp.mean(jnp.sum(disc * advantage[0] * log_prob, axis=0))

        return jax.grad(f)(th)

    expected = naive(theta)
    for got in (shaped_fns(0)[0](1.0, theta)[1], shaped_fns(1)[0](0.0, theta)[1]):
        for g, x in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(g, x, rtol=1e-4, atol=1e-7)
    # with a look-ahead the gradient differs (opponent shaping)
    got = shaped_fns(1)[0](1.0, theta)[1]
    diff = max(
        float(jnp.max(jnp.abs(g - x)))
        for g, x in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True)
    )
    assert diff > 1e-5


def test_look_ahead__every_opponent_steps_on_its_own_objective():
    # Three agents, one step of size 1 for agent 0: rows 1 and 2 move by their own
    # gradient grad_{theta_j} DiCE_j (computed here one agent at a time), row 0 not.
    policy, variables, batch, pain, advantage = tiny(3)
    objectives, look, _ = make_objectives(policy, 0.9, 1.0, 1)

    @jax.jit
    def both(variables):
        def own(j):
            def f(theta):
                rows = jax.tree.map(lambda v, t: v.at[j].set(t), variables, theta)
                return objectives(rows, batch, pain, advantage)[0][j]

            return jax.grad(f)(jax.tree.map(lambda v: v[j], variables))

        return look(variables, 0, batch, pain, advantage), (own(1), own(2))

    ahead, (g1, g2) = both(variables)
    for a, v, x1, x2 in zip(
        *(jax.tree.leaves(t) for t in (ahead, variables, g1, g2)), strict=True
    ):
        np.testing.assert_array_equal(a[0], v[0])
        np.testing.assert_allclose(a[1], v[1] + x1, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(a[2], v[2] + x2, rtol=1e-5, atol=1e-7)
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(g2)) > 1e-3


def test_shaped_objective__baseline_is_detached_to_every_order():
    # C17: no gradient reaches the advantages (critic outputs), also through the
    # opponent's look-ahead (the second-order term).
    policy, variables, batch, pain, advantage = tiny()
    _, _, shaped = make_objectives(policy, 0.9, 1.0, 1)
    theta = theta0()
    grad = jax.jit(jax.grad(lambda a: shaped(theta, variables, 0, batch, pain, a)[0]))(
        advantage
    )
    np.testing.assert_array_equal(grad, 0.0)


# ----- config ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("lola_lookahead", -1), ("lola_lookahead", 1.5), ("lola_inner_lr", -0.1)],
)
def test_train_config__invalid_lola_field_is_named(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(algorithm="lola_dice", **{field: value})


def test_train_config__lola_dice_is_an_algorithm_for_any_agent():
    assert TrainConfig(algorithm="lola_dice").label == "lola_dice"
    config = TrainConfig(agent_algorithms=("lola_dice", "ppo"))
    assert config.algorithms(2) == ("lola_dice", "ppo")
    with pytest.raises(ValueError, match="TrainConfig.agent_algorithms"):
        make_train(config.replace(env="ipd", agent_algorithms=("lola_dice",)))


# ----- one jitted update ---------------------------------------------------------------

SMALL = dict(
    num_envs=4,
    num_steps=6,
    num_updates=1,
    num_epochs=2,
    num_minibatches=2,
    hidden=(8,),
    pain_threshold=0.5,
    pain_sigma=1.0,
    pain_dropout_rate=0.4,
    lola_inner_lr=0.5,
)
CASES = {
    "coin_game": dict(env="coin_game", env_options={"max_steps": 4}),
    # mixed learners on the IPD: a LOLA-DiCE agent against a PPO agent
    "ipd-lola+ppo": dict(
        env="ipd", env_options={"max_steps": 4}, agent_algorithms=("lola_dice", "ppo")
    ),
}
MODES = (OFF, NOISE, DROPOUT)


def with_mode(env_params, mode: int):
    return env_params.replace(pain=env_params.pain.replace(mode=jnp.int32(mode)))


def run_every_mode(config: TrainConfig, trainer=None):
    trainer = trainer or make_trainer(config)
    traces = []

    def update(runner, params):
        traces.append(1)
        return trainer.update(runner, params)

    init, update = jax.jit(trainer.init), jax.jit(update)
    for mode in MODES:
        params = with_mode(trainer.env_params, mode)
        runner = init(jax.random.key(0), params)
        new, metrics = update(runner, params)
        for name in ("loss", "policy_loss", "value_loss", "entropy", "grad_norm"):
            assert np.all(np.isfinite(metrics[name])), (mode, name)
            assert metrics[name].shape == (trainer.num_agents,)
        assert float(np.max(metrics["initial_ratio_error"])) < 1e-5, mode
        if mode != OFF:
            assert np.all(np.asarray(metrics["pain_share"]) > 0.2)
        moved = jax.tree.map(
            lambda a, b: jnp.any(a != b, axis=tuple(range(1, a.ndim))),
            runner.variables,
            new.variables,
        )
        assert np.all(np.any(np.stack(jax.tree.leaves(moved)), axis=0)), mode
    assert len(traces) == 1


@functools.cache
def case_trainer(case: str):
    algorithm = {} if "agent_algorithms" in CASES[case] else {"algorithm": "lola_dice"}
    return make_trainer(TrainConfig(**SMALL, **CASES[case], **algorithm))


@pytest.mark.parametrize("case", sorted(CASES))
def test_update__lola_dice_runs_with_every_pain_mode_on_one_compile(case):
    trainer = case_trainer(case)
    run_every_mode(trainer.config, trainer)


def test_update__lola_dice_consumes_no_key_twice():
    # C18 with mixed learners (the update key is split between the shared and the
    # LOLA-DiCE update); stored pain keys are replayed from their data on purpose.
    trainer = case_trainer("ipd-lola+ppo")
    params = with_mode(trainer.env_params, DROPOUT)
    runner = jax.jit(trainer.init)(jax.random.key(0), params)
    with jax.debug_key_reuse(True):
        jax.make_jaxpr(trainer.update)(runner, params)


@pytest.mark.slow
@pytest.mark.parametrize("network", ["mlp", "cnn", "gru"])
@pytest.mark.parametrize("env", ["coin_game", "ipd"])
def test_update__lola_dice_every_network_and_environment(env, network):
    if network == "cnn" and env == "ipd":
        pytest.skip("the IPD observes a flat vector")
    config = TrainConfig(
        **SMALL,
        env=env,
        env_options={"max_steps": 4},
        algorithm="lola_dice",
        lola_lookahead=2,
        network=network,
        gru_hidden=8,
    )
    run_every_mode(config)
