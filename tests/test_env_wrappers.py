"""``pain_jax.envs.wrappers``: the dict-of-agents adapter (C01), the episode log
(C10) and the rollout helper (C11), on the hand-computable toy ``Counter`` (agents
placed explicitly, C20) and on every registered environment where it is generic."""

from __future__ import annotations

import copy
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toy_env import ENV_NAMES, TOY, CounterState, make_env

from pain_jax.envs.wrappers import (
    DictAgents,
    EpisodeLog,
    EpisodeLogStats,
    RolloutCarry,
    random_policy,
    rollout,
)


def _placed(pos, time=0):
    """Toy state with agents on explicit cells (C20)."""
    n = len(pos)
    return CounterState(
        time=jnp.int32(time),
        pos=jnp.array(pos, jnp.int32),
        counts=jnp.zeros(n, jnp.int32),
        returns=jnp.zeros(n, jnp.float32),
    )


# --------------------------------------------------------------------------------------
# C01 actions routed by agent (DictAgents)
# --------------------------------------------------------------------------------------
@functools.cache
def dict_toy(num_agents: int = 3):
    env, params = make_env(TOY, num_agents=num_agents)
    denv = DictAgents(env)
    return denv, params, jax.jit(denv.step)


def test_c01_dict_agents__all_stay_leaves_positions_and_rewards_zero():
    denv, params, step = dict_toy()
    state = _placed([0, 2, 4])
    actions = {name: jnp.int32(0) for name in denv.agents}
    obs, new, rewards, dones, _ = step(jax.random.key(0), state, actions, params)
    np.testing.assert_array_equal(new.pos, [0, 2, 4])
    assert {k: float(v) for k, v in rewards.items()} == dict.fromkeys(denv.agents, 0.0)
    assert set(dones) == {*denv.agents, "__all__"} and not any(map(bool, dones.values()))
    np.testing.assert_array_equal(obs["agent_1"][:5], [0, 0, 1, 0, 0])


def test_c01_dict_agents__each_agent_moves_by_its_own_action_in_any_order():
    denv, params, step = dict_toy()
    state = _placed([0, 2, 4])
    # agent_0 right, agent_1 left, agent_2 stays; built in two different orders
    forward = {"agent_0": 1, "agent_1": 2, "agent_2": 0}
    backward = dict(reversed(list(forward.items())))
    a = step(jax.random.key(0), state, forward, params)
    b = step(jax.random.key(0), state, backward, params)
    chex.assert_trees_all_equal(a, b)
    np.testing.assert_array_equal(a[1].pos, [1, 1, 4])
    assert [float(a[2][n]) for n in denv.agents] == [1.0, 2.0, 0.0]


@pytest.mark.parametrize(
    "actions, words",
    [
        ({"agent_0": 0, "agent_1": 0}, ["missing ['agent_2']"]),
        (
            {"agent_0": 0, "agent_1": 0, "agent_2": 0, "agent_9": 1},
            ["unknown ['agent_9']"],
        ),
        (
            {"agent_0": 0, "agent_1": 0, "bob": 0},
            ["missing ['agent_2']", "unknown ['bob']"],
        ),
    ],
)
def test_c01_dict_agents__missing_or_unknown_name_raises_listing_agents(actions, words):
    denv, params, step = dict_toy()
    with pytest.raises(ValueError, match="agent_0', 'agent_1', 'agent_2'") as err:
        step(jax.random.key(0), _placed([0, 0, 0]), actions, params)
    for w in words:
        assert w in str(err.value)
    with pytest.raises(TypeError, match="dict keyed by agent name"):
        denv.stack_actions(jnp.zeros(3, jnp.int32))


def test_dict_agents__vmaps_over_copies_with_batched_dict_actions():
    denv, params, _ = dict_toy()
    keys = jax.random.split(jax.random.key(0), 4)
    obs, state = jax.vmap(denv.reset, (0, None))(keys, params)
    actions = {"agent_2": jnp.array([0, 1, 2, 0]), "agent_0": jnp.array([1, 1, 1, 1])}
    actions["agent_1"] = jnp.zeros(4, jnp.int32)
    step = jax.jit(jax.vmap(denv.step, (0, 0, 0, None)))
    _, new, rewards, dones, _ = step(keys, state, actions, params)
    assert obs["agent_0"].shape == (4, 6) and dones["__all__"].shape == (4,)
    np.testing.assert_array_equal(new.pos[:, 0], (state.pos[:, 0] + 1) % 5)
    moves = np.array([0, 1, -1, 0])  # stay, right, left, stay
    np.testing.assert_array_equal(new.pos[:, 2], (state.pos[:, 2] + moves) % 5)
    np.testing.assert_array_equal(rewards["agent_2"], [0.0, 1.0, 2.0, 0.0])


@pytest.mark.parametrize("name", ENV_NAMES)
def test_dict_agents__spaces_and_outputs_per_agent(name):
    env, params = make_env(name)
    denv = DictAgents(env)
    assert denv.agents == [f"agent_{i}" for i in range(env.num_agents)]
    obs, state = denv.reset(jax.random.key(0), params)
    space = denv.observation_space("agent_0", params)
    for agent in denv.agents:
        assert obs[agent].shape == space.shape and obs[agent].dtype == space.dtype
        assert denv.action_space(agent, params).n == env.num_actions
    with pytest.raises(ValueError, match="agents are"):
        denv.action_space("nobody")
    acts = {agent: jnp.int32(0) for agent in denv.agents}
    obs, _, rewards, dones, info = jax.eval_shape(
        denv.step, jax.random.key(1), state, acts, params
    )
    assert set(rewards) == set(denv.agents) and rewards["agent_0"].shape == ()
    assert rewards["agent_0"].dtype == jnp.float32 and dones["__all__"].dtype == jnp.bool_
    assert info["final_obs"].shape == (env.num_agents, *env.obs_shape)


# --------------------------------------------------------------------------------------
# C10 "no episode yet" is not a zero return (EpisodeLog)
# --------------------------------------------------------------------------------------
@functools.cache
def logged_toy():
    env, _ = make_env(TOY)
    logged = EpisodeLog(env)
    return logged, jax.jit(logged.reset), jax.jit(logged.step)


@pytest.mark.parametrize("scale, want", [(0.0, [0.0, 0.0]), (1.0, [3.0, 6.0])])
def test_c10_episode_log__invalid_until_first_episode_ends(scale, want):
    logged, reset, step = logged_toy()
    _, params = make_env(TOY, max_steps=3, reward_scale=scale)
    _, state = reset(jax.random.key(0), params)
    actions = jnp.array([1, 2], jnp.int32)  # rewards scale * (1, 2) per step
    valid, returns = [], []
    for t in range(4):
        _, state, _, done, info = step(jax.random.key(t + 1), state, actions, params)
        valid.append(bool(state.log.valid))
        returns.append(np.asarray(state.log.episode_return).tolist())
        assert info["log"] is not None
    assert valid == [False, False, True, True]
    assert returns[1] == [0.0, 0.0]  # a placeholder, flagged invalid above
    assert returns[2] == returns[3] == want
    assert int(state.log.episode_length) == 3 and int(state.log.num_episodes) == 1


def test_c10_episode_log__stats_update_per_copy_under_vmap_over_params():
    # (every registered env's info["episode"] is checked in test_field_cases_env.py)
    env, params = make_env(TOY)
    logged = EpisodeLog(env)
    batch = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * 2), params)
    batch = batch.replace(max_steps=jnp.array([2, 3], jnp.int32))
    # one copy per params object, vmapped over params (max_steps 2 and 3)
    run = jax.jit(
        jax.vmap(lambda k, p: rollout(logged, random_policy(logged), k, p, 4, 1), (0, 0))
    )
    _, traj = run(jax.random.split(jax.random.key(0), 2), batch)
    valid = np.asarray(traj.info["log"].valid[..., 0])  # (copy, T)
    np.testing.assert_array_equal(valid, [[0, 1, 1, 1], [0, 0, 1, 1]])
    lengths = np.asarray(traj.info["log"].episode_length[..., 0])
    np.testing.assert_array_equal(lengths, [[0, 2, 2, 2], [0, 0, 3, 3]])
    # the logged return is the episode's summed rewards
    rewards = np.asarray(traj.rewards[:, :, 0])  # (copy, T, A)
    got = np.asarray(traj.info["log"].episode_return[:, 3, 0])
    np.testing.assert_allclose(got[0], rewards[0, 2:4].sum(0), rtol=1e-6)  # 2nd episode
    np.testing.assert_allclose(got[1], rewards[1, :3].sum(0), rtol=1e-6)


def test_episode_log_stats__init_is_invalid_zeros():
    log = EpisodeLogStats.init(3)
    assert not bool(log.valid) and int(log.num_episodes) == 0
    assert log.episode_return.shape == (3,) and log.episode_return.dtype == jnp.float32


# --------------------------------------------------------------------------------------
# C11 rollout length is what was asked
# --------------------------------------------------------------------------------------
def test_c11_rollout__100_steps_of_500_step_episodes_has_time_axis_100():
    env, _ = make_env(TOY)
    _, params = make_env(TOY, max_steps=500)
    run = jax.jit(lambda k, p: rollout(env, random_policy(env), k, p, 100, 3))
    carry, traj = run(jax.random.key(0), params)
    for path, leaf in jax.tree_util.tree_leaves_with_path(traj):
        assert leaf.shape[:2] == (100, 3), f"{jax.tree_util.keystr(path)}: {leaf.shape}"
    assert not np.asarray(traj.done).any()
    np.testing.assert_array_equal(carry.state.time, [100] * 3)
    # Continuing from the carry keeps counting: 200 steps into the episode.
    carry2, _ = jax.jit(
        lambda k, p, c: rollout(env, random_policy(env), k, p, 100, 3, init=c)
    )(jax.random.key(1), params, carry)
    np.testing.assert_array_equal(carry2.state.time, [200] * 3)


def test_rollout__obs_row_is_what_the_policy_saw_and_aux_is_stacked():
    env, params = make_env(TOY, max_steps=4)

    def policy(key, obs):  # always "right"; aux = the obs it saw
        return jnp.ones(obs.shape[:2], jnp.int32), obs

    carry, traj = jax.jit(lambda k: rollout(env, policy, k, params, 6, 2))(
        jax.random.key(0)
    )
    np.testing.assert_array_equal(traj.aux, traj.obs)
    # obs[t + 1] is the obs returned by step t (the next episode's first when done)
    final = traj.info["final_obs"]
    np.testing.assert_array_equal(
        traj.obs[1:][~traj.done[:-1]], final[:-1][~traj.done[:-1]]
    )
    np.testing.assert_array_equal(carry.obs, final[-1])  # step 6 is not an episode end
    np.testing.assert_array_equal(traj.done[:, 0], [0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(traj.rewards, np.ones((6, 2, 2)))
    assert isinstance(carry, RolloutCarry)


def test_rollout__rejects_non_positive_lengths():
    env, params = make_env(TOY)
    with pytest.raises(ValueError, match="num_steps and num_envs must be >= 1"):
        rollout(env, random_policy(env), jax.random.key(0), params, 0, 2)


@functools.cache
def logged_toy_rollout():
    env, _ = make_env(TOY)
    logged = EpisodeLog(env)
    return jax.jit(lambda k, p: rollout(logged, random_policy(logged), k, p, 30, 2))


@settings(max_examples=15, deadline=None)
@given(max_steps=st.integers(1, 12), scale=st.sampled_from([0.0, 0.5]))
def test_episode_log__valid_from_first_end_with_that_episodes_stats(max_steps, scale):
    _, params = make_env(TOY, max_steps=max_steps, reward_scale=scale)
    _, traj = logged_toy_rollout()(jax.random.key(max_steps), params)
    t = np.arange(30)
    ends = (t + 1) % max_steps == 0
    np.testing.assert_array_equal(traj.done, np.stack([ends, ends], 1))
    log = traj.info["log"]
    np.testing.assert_array_equal(log.valid[:, 0], t >= max_steps - 1)
    np.testing.assert_array_equal(log.num_episodes[:, 0], (t + 1) // max_steps)
    np.testing.assert_array_equal(
        log.episode_length[:, 0], np.where(ends.cumsum(), max_steps, 0)
    )
    # the last finished episode's return is its summed rewards (scale * actions)
    last = (30 // max_steps) * max_steps
    want = traj.rewards[last - max_steps : last].sum(0)
    np.testing.assert_allclose(log.episode_return[-1], want, rtol=1e-6)


def test_episode_log__delegates_attributes_and_copies():
    env, params = make_env(TOY, num_agents=3)
    logged = EpisodeLog(env)
    assert logged.num_agents == 3 and logged.obs_shape == env.obs_shape
    assert logged.action_space(params).n == 3
    assert copy.copy(logged).env is env  # no recursion through __getattr__
