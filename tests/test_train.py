"""The shared training loop: Advantage Alignment's modified advantage, the policy
losses, config checks, and one jitted update of each algorithm on Coin Game and the
sampled IPD with every pain mode (one compile serves all modes: the mode is traced),
importance ratio 1 on stored rollouts under pain, and seeds deciding everything."""

import functools

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from pain_jax.learn.advantage_alignment import (
    aligned_advantages,
    discounted_past_sum,
    modified_advantage,
)
from pain_jax.learn.config import TrainConfig
from pain_jax.learn.ppo import clipped_policy_loss, policy_gradient_loss
from pain_jax.learn.rollout import rollout
from pain_jax.learn.train import ALGORITHMS, make_train, make_trainer
from pain_jax.pain.dynamics import DROPOUT, NOISE, OFF

# ----- Advantage Alignment ----------------------------------------------------------


def test_modified_advantage__hand_computed_three_steps():
    # A1 = [1, 2, 3], A2 = [0.5, -1, 2], gamma = 0.5, beta = 2.
    # S_0 = 0; S_1 = 0.5 * 1 = 0.5; S_2 = 0.25 * 1 + 0.5 * 2 = 1.25.
    # A*_t = A1_t + beta * gamma * S_t * A2_t:
    #   A*_0 = 1; A*_1 = 2 + 2 * 0.5 * 0.5 * (-1) = 1.5;
    #   A*_2 = 3 + 2 * 0.5 * 1.25 * 2 = 5.5
    own = jnp.array([1.0, 2.0, 3.0])
    other = jnp.array([0.5, -1.0, 2.0])
    reset = jnp.array([True, False, False])
    out = modified_advantage(own, other, reset, 0.5, 2.0)
    np.testing.assert_allclose(out, [1.0, 1.5, 5.5], rtol=1e-6)


def test_modified_advantage__sum_restarts_at_episode_start():
    # A new episode starts at t = 2: S_2 = 0, so A*_2 = A1_2 = 3.
    own = jnp.array([1.0, 2.0, 3.0])
    other = jnp.array([0.5, -1.0, 2.0])
    reset = jnp.array([True, False, True])
    out = modified_advantage(own, other, reset, 0.5, 2.0)
    np.testing.assert_allclose(out, [1.0, 1.5, 3.0], rtol=1e-6)


past_sum = jax.jit(discounted_past_sum)  # padded to length 8: one compile


@settings(max_examples=25, deadline=None)
@given(
    adv=st.lists(st.floats(-5, 5, width=32), min_size=1, max_size=8),
    resets=st.lists(st.booleans(), min_size=8, max_size=8),
    gamma=st.floats(0.0, 1.0),
)
def test_discounted_past_sum__matches_slow_loop(adv, resets, gamma):
    n = len(adv)
    start = 0
    expected = []
    for t in range(n):
        if resets[t]:
            start = t
        expected.append(sum(gamma ** (t - k) * adv[k] for k in range(start, t)))
    out = past_sum(jnp.array(adv + [0.0] * (8 - n)), jnp.array(resets), gamma)[:n]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_aligned_advantages__opponent_term_is_the_other_agents_sum():
    key = jax.random.key(3)
    adv = jax.random.normal(key, (5, 2, 3))  # (T, E, A = 3)
    reset = jnp.zeros((5, 2), bool).at[0].set(True).at[3, 1].set(True)
    out = jax.jit(aligned_advantages)(adv, reset, 0.9, 0.7)
    for i in range(3):
        others = adv.sum(-1) - adv[..., i]
        expected = jax.jit(modified_advantage)(adv[..., i], others, reset, 0.9, 0.7)
        np.testing.assert_allclose(out[..., i], expected, rtol=1e-6)


# ----- policy losses ----------------------------------------------------------------


def test_clipped_policy_loss__hand_values():
    # ratio 1.5, A = 1, eps 0.2: min(1.5, 1.2) = 1.2; ratio 0.5, A = -1:
    # min(-0.5, -0.8) = -0.8.  Loss = -mean(1.2, -0.8) = -0.2; both rows clipped.
    old = jnp.zeros(2)
    new = jnp.log(jnp.array([1.5, 0.5]))
    loss, stats = clipped_policy_loss(new, old, jnp.array([1.0, -1.0]), 0.2)
    np.testing.assert_allclose(loss, -0.2, rtol=1e-6)
    np.testing.assert_allclose(stats["clip_frac"], 1.0)


def test_policy_gradient_loss__gradient_is_minus_advantage_over_n():
    adv = jnp.array([2.0, -1.0, 0.5])
    grad = jax.grad(lambda lp: policy_gradient_loss(lp, lp, adv, 0.2)[0])(jnp.zeros(3))
    np.testing.assert_allclose(grad, -adv / 3, rtol=1e-6)


# ----- config ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("algorithm", "lola"),
        ("network", "transformer"),
        ("pain_mode", "agony"),
        ("num_envs", 0),
        ("num_minibatches", 3),  # does not divide num_envs = 256
        ("gamma", 1.5),
        ("lr", -1.0),
        ("hidden", ()),
        ("pain_dropout_max", 1.0),
        ("pain_linger", -1),
        ("ent_coef", float("nan")),
    ],
)
def test_train_config__invalid_field_is_named(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(env="no_such_game"), "env"),
        (dict(env="ipd", env_options={"no_such_option": 1}), "env_options"),
        (dict(env="ipd", env_options={"max_steps": 0}), "env_options"),
        (dict(env="ipd", network="cnn"), "network"),
        (dict(env="ipd", hidden=(8,), pain_layers=(1,)), "pain_layers"),
        (dict(env="ipd", network="gru", hidden=(8, 8), pain_layers=(2,)), "pain_layers"),
    ],
)
def test_make_train__environment_mismatch_is_named(changes, field):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        make_train(TrainConfig(**changes))


# ----- one jitted update ---------------------------------------------------------------

SMALL = dict(
    num_envs=4,
    num_steps=6,
    num_updates=1,
    num_epochs=2,
    num_minibatches=2,
    hidden=(8,),
    pain_threshold=0.5,  # Coin Game pays 0 most steps: pain is felt
    pain_sigma=1.0,
    pain_dropout_rate=0.4,
)
# Episodes of 4 steps inside rollouts of 6: truncation bootstraps are exercised.
CASES = {
    "coin_game-aa": dict(env="coin_game", env_options={"max_steps": 4}, algorithm="aa"),
    # mixed learners (different losses) and the learned opponent-value model
    "coin_game-aa_pg+ppo-model": dict(
        env="coin_game",
        env_options={"max_steps": 4},
        agent_algorithms=("aa_pg", "ppo"),
        opponent_value="model",
    ),
}
MODES = (OFF, NOISE, DROPOUT)


@functools.cache
def compiled(case: str):
    """(trainer, jitted init, jitted update, trace counter) for one case."""
    trainer = make_trainer(TrainConfig(**SMALL, **CASES[case]))
    traces = []

    def update(runner, params):
        traces.append(1)
        return trainer.update(runner, params)

    return trainer, jax.jit(trainer.init), jax.jit(update), traces


def with_mode(env_params, mode: int):
    return env_params.replace(pain=env_params.pain.replace(mode=jnp.int32(mode)))


def check_metrics(metrics, num_agents: int, mode: int):
    for name in ("loss", "policy_loss", "value_loss", "entropy", "grad_norm"):
        assert np.all(np.isfinite(metrics[name])), (mode, name)
        assert metrics[name].shape[-1] == num_agents
    # Re-evaluating stored actions under the stored pain keys and levels
    # reproduces the behaviour: importance ratio 1 before the first step.
    assert float(np.max(metrics["initial_ratio_error"])) < 1e-5, mode
    assert np.all(np.isfinite(metrics["episode/return"]))
    if mode != OFF:
        assert np.all(np.asarray(metrics["pain_share"]) > 0.2)  # acted in pain


@pytest.mark.parametrize("case", sorted(CASES))
def test_update__runs_with_every_pain_mode_on_one_compile(case):
    trainer, init, update, traces = compiled(case)
    for mode in MODES:
        params = with_mode(trainer.env_params, mode)
        runner = init(jax.random.key(0), params)
        new, metrics = update(runner, params)
        check_metrics(metrics, trainer.num_agents, mode)
        # every agent's parameters moved
        moved = jax.tree.map(
            lambda a, b: jnp.any(a != b, axis=tuple(range(1, a.ndim))),
            runner.variables,
            new.variables,
        )
        assert np.all(np.any(np.stack(jax.tree.leaves(moved)), axis=0))
        assert int(new.update) == 1
        assert int(metrics["episodes"]) == trainer.config.num_envs  # one per copy
    assert len(traces) == 1  # the pain mode is traced: one compile for all modes


def test_update__same_seed_bit_identical_other_seed_differs():
    trainer, init, update, _ = compiled("coin_game-aa")
    params = with_mode(trainer.env_params, NOISE)

    def after(seed):
        runner, metrics = update(init(jax.random.key(seed), params), params)
        return jax.tree.leaves((runner.variables, metrics["loss"]))

    a, b, c = after(7), after(7), after(8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c, strict=True))


def test_update__no_key_is_consumed_twice():
    # C18: one full iteration (rollout, pain noise, bootstrap values, minibatch
    # permutations) traces clean under JAX's key-reuse checker.  Stored pain keys
    # are replayed from their recorded data, which is deliberate, not reuse.
    trainer, init, _, _ = compiled("coin_game-aa")
    params = with_mode(trainer.env_params, DROPOUT)
    runner = init(jax.random.key(0), params)
    with jax.debug_key_reuse(True):
        jax.make_jaxpr(trainer.update)(runner, params)
        with pytest.raises(jax.errors.KeyReuseError):  # the checker is live
            jax.make_jaxpr(lambda k: jax.random.normal(k) + jax.random.normal(k))(
                runner.key
            )


def test_rollout__bootstrap_value_is_the_critic_at_the_true_final_observation():
    # C06 through the loop: IPD episodes of 4 steps in a rollout of 6.  The true
    # final observation of agent i after joint action (a_i, a_j) is the memory
    # one-hot 1 + 2 a_i + a_j (the returned one, after the reset, is START = 0);
    # the stored bootstrap value at the truncation step must be the agent's own
    # critic there.  The critic feels no pain, so it is deterministic.
    config = TrainConfig(**{**SMALL, "env": "ipd", "env_options": {"max_steps": 4}})
    trainer = make_trainer(config)
    params = with_mode(trainer.env_params, NOISE)
    runner = jax.jit(trainer.init)(jax.random.key(5), params)

    @jax.jit
    def roll(runner):
        return rollout(
            trainer.env,
            trainer.policy,
            runner.variables,
            runner.rollout,
            runner.key,
            params,
            6,
        )[1]

    tr = roll(runner)
    np.testing.assert_array_equal(tr.done[:, 0], [0, 0, 0, 1, 0, 0])
    final_obs = jax.nn.one_hot(1 + 2 * tr.action + tr.action[..., ::-1], 5)

    def critic(i):
        variables = jax.tree.map(lambda x: x[i], runner.variables)
        obs = final_obs[:, :, i]
        _, value = trainer.policy.model.apply(
            variables,
            obs,
            jnp.zeros(obs.shape[:-1]),
            params.pain,
            rngs={"pain": jax.random.key(0)},
        )
        return value

    expected = jnp.stack([critic(0), critic(1)], axis=-1)  # (T, E, A)
    np.testing.assert_allclose(tr.final_value[3], expected[3], rtol=1e-5, atol=1e-6)
    # Inside an episode the next step's value is the critic at the same observation.
    np.testing.assert_allclose(tr.value[1:3], expected[0:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(tr.obs[4], jax.nn.one_hot(jnp.zeros((4, 2), int), 5))
    assert not np.allclose(tr.final_value[3], tr.value[4])  # START is not final_obs


def test_make_train__ppo_vmaps_over_seeds_with_every_pain_mode():
    config = TrainConfig(
        **{**SMALL, "env": "ipd", "env_options": {"max_steps": 4}, "num_updates": 2}
    )
    assert config.algorithm == "ppo" and set(ALGORITHMS) == {"ppo", "aa", "aa_pg"}
    train_fn = make_train(config)
    train = jax.jit(jax.vmap(train_fn, in_axes=(0, None)))
    keys = jax.random.split(jax.random.key(0), 3)
    for mode in MODES:
        _, metrics = train(keys, with_mode(train_fn.trainer.env_params, mode))
        assert metrics["reward_per_step"].shape == (3, 2, 2)  # (seeds, updates, A)
        np.testing.assert_array_equal(metrics["update"], [[1, 2]] * 3)
        check_metrics(metrics, 2, mode)
        rewards = np.asarray(metrics["reward_per_step"])
        assert not np.array_equal(rewards[0], rewards[1])  # seeds differ


@pytest.mark.slow
@pytest.mark.parametrize("network", ["mlp", "cnn", "gru"])
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("env", ["coin_game", "ipd"])
def test_update__every_algorithm_network_and_environment(env, algorithm, network):
    if network == "cnn" and env == "ipd":
        pytest.skip("the IPD observes a flat vector")
    config = TrainConfig(
        **SMALL,
        env=env,
        env_options={"max_steps": 4},
        algorithm=algorithm,
        network=network,
        gru_hidden=8,
    )
    trainer = make_trainer(config)
    init, update = jax.jit(trainer.init), jax.jit(trainer.update)
    for mode in MODES:
        params = with_mode(trainer.env_params, mode)
        _, metrics = update(init(jax.random.key(0), params), params)
        check_metrics(metrics, trainer.num_agents, mode)


@pytest.mark.slow
@pytest.mark.parametrize("network", ["mlp", "cnn", "gru"])
@pytest.mark.parametrize("env", ["coin_game", "ipd"])
def test_update__mixed_learners_with_opponent_model(env, network):
    if network == "cnn" and env == "ipd":
        pytest.skip("the IPD observes a flat vector")
    config = TrainConfig(
        **SMALL,
        env=env,
        env_options={"max_steps": 4},
        agent_algorithms=("aa", "ppo"),
        opponent_value="model",
        network=network,
        gru_hidden=8,
    )
    trainer = make_trainer(config)
    init, update = jax.jit(trainer.init), jax.jit(trainer.update)
    for mode in MODES:
        params = with_mode(trainer.env_params, mode)
        _, metrics = update(init(jax.random.key(0), params), params)
        check_metrics(metrics, trainer.num_agents, mode)
        assert np.all(np.isfinite(metrics["opponent_model_loss"]))


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ppo", "aa"])
def test_train__coin_game_self_play_sanity(algorithm):
    # Both start at random play (about 10 pickups per 50-step episode, own-coin
    # rate 0.5).  Independent PPO learners learn to grab every coin, whoever's it is
    # (pickups rise, own-coin rate stays near random: the selfish outcome);
    # Advantage Alignment learners learn to leave the other's coins alone (own-coin
    # rate near 1, positive reward per step).
    config = TrainConfig(
        env="coin_game",
        algorithm=algorithm,
        num_envs=64,
        num_steps=50,
        num_updates=120,
        hidden=(64, 64),
        lr=1e-3,
    )
    trainer = make_trainer(config)
    runner = jax.jit(trainer.init)(jax.random.key(0))
    run = jax.jit(lambda r: trainer.run(r, 30))
    chunks = []
    for _ in range(config.num_updates // 30):  # the host loop runs in chunks
        runner, metrics = run(runner)
        chunks.append(jax.device_get(metrics))
    m = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    pickups = m["episode/pickups"].sum(-1)
    own = m["episode/own_coin_rate"]
    reward = m["reward_per_step"].mean(-1)
    print(
        f"{algorithm}: pickups/episode {pickups[0]:.1f} -> {pickups[-10:].mean():.1f}, "
        f"own-coin rate {own[0]:.3f} -> {own[-10:].mean():.3f}, reward/step "
        f"{reward[0]:.3f} -> {reward[-10:].mean():.3f}"
    )
    assert np.all(np.isfinite(m["loss"]))
    if algorithm == "ppo":
        assert pickups[-10:].mean() > 2.5 * pickups[0]
        assert 0.35 < own[-10:].mean() < 0.6
    else:
        assert own[-10:].mean() > 0.8
        assert reward[-10:].mean() > 0.03
