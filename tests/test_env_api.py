"""The environment API contract, checked on every registered environment.

Each environment is compiled a few times only: ``_Compiled`` holds one jitted
``reset``, one jitted ``step`` (wrapped in ``chex.assert_max_traces(n=1)``, so any
retrace in any test fails) and one jitted 1024-copy rollout, shared by all tests.
``tests/toy_env.py``'s ``Counter`` runs through the same checks (name ``TOY``).
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy_env import ENV_NAMES, TOY, Counter, make_counter, make_env

import pain_jax as pj
from pain_jax.envs import registry
from pain_jax.envs.spaces import Box, Discrete
from pain_jax.envs.wrappers import random_policy, rollout

BATCH = 1024
ROLLOUT_STEPS = 8


class _Compiled:
    """Jitted functions of one environment, compiled once per test session."""

    def __init__(self, name: str):
        self.env, self.params = make_env(name)
        env = self.env
        self.reset = jax.jit(env.reset)
        self.step = jax.jit(env.step)
        policy = random_policy(env)

        @jax.jit
        def batched_rollout(key, params):
            return rollout(env, policy, key, params, ROLLOUT_STEPS, BATCH)

        self.rollout = batched_rollout

    def first_step(self, seed: int = 0):
        """Reset then one random step: ``(obs0, state0, actions, step outputs)``."""
        k_reset, k_act, k_step = jax.random.split(jax.random.key(seed), 3)
        obs0, state0 = self.reset(k_reset, self.params)
        actions = self.env.action_space(self.params).sample(k_act, (self.env.num_agents,))
        return obs0, state0, actions, self.step(k_step, state0, actions, self.params)


@functools.cache
def compiled(name: str) -> _Compiled:
    return _Compiled(name)


@functools.cache
def rollout_out(name: str, seed: int = 0):
    c = compiled(name)
    return jax.device_get(c.rollout(jax.random.key(seed), c.params))


def _assert(x, shape, dtype, what: str):
    x = jnp.asarray(x)
    assert x.shape == tuple(shape), f"{what}: shape {x.shape}, expected {tuple(shape)}"
    assert x.dtype == dtype, f"{what}: dtype {x.dtype}, expected {dtype}"


# --------------------------------------------------------------------------------------
# shapes, dtypes, spaces
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ENV_NAMES)
def test_reset_step__shapes_and_dtypes(name):
    c = compiled(name)
    env, a = c.env, c.env.num_agents
    obs0, state0, _, (obs, state, rewards, done, info) = c.first_step()
    for what, o in (
        ("reset obs", obs0),
        ("step obs", obs),
        ("final_obs", info["final_obs"]),
    ):
        _assert(o, (a, *env.obs_shape), jnp.float32, what)
    _assert(rewards, (a,), jnp.float32, "rewards")
    _assert(done, (), jnp.bool_, "done")
    _assert(info["terminated"], (), jnp.bool_, "info['terminated']")
    _assert(info["truncated"], (), jnp.bool_, "info['truncated']")
    _assert(info["episode"]["return"], (a,), jnp.float32, "info['episode']['return']")
    _assert(info["episode"]["length"], (), jnp.int32, "info['episode']['length']")
    _assert(state0.time, (), jnp.int32, "state.time")
    # step keeps the state's structure, shapes and dtypes (it is scanned over).
    chex.assert_trees_all_equal_shapes_and_dtypes(state0, state)
    assert bool(done) == bool(info["terminated"] | info["truncated"])


@pytest.mark.parametrize("name", ENV_NAMES)
def test_spaces__match_actual_outputs(name):
    c = compiled(name)
    env, params = c.env, c.params
    obs_space, act_space = env.observation_space(params), env.action_space(params)
    assert isinstance(obs_space, Box) and isinstance(act_space, Discrete)
    assert obs_space.shape == env.obs_shape
    assert act_space.n == env.num_actions and act_space.shape == ()
    assert act_space.dtype == jnp.int32
    obs0, _, actions, (obs, *_rest, info) = c.first_step()
    assert obs0.dtype == obs_space.dtype == obs.dtype
    for o in (obs0, obs, info["final_obs"]):
        assert bool(obs_space.contains(o))
    assert actions.dtype == act_space.dtype and bool(act_space.contains(actions))
    # Every observation of a 1024-copy rollout lies in the space, every sampled
    # action covers the whole Discrete range.
    _, traj = rollout_out(name)
    assert bool(obs_space.contains(traj.obs)), "an observation left the space"
    assert bool(obs_space.contains(traj.info["final_obs"]))
    assert set(np.unique(traj.actions).tolist()) == set(range(env.num_actions))


# --------------------------------------------------------------------------------------
# jit once, vmap, determinism
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ENV_NAMES)
def test_step__jits_once_across_keys_states_and_params(name):
    c = compiled(name)
    _, _, actions, (_, state, *_r) = c.first_step(seed=1)
    # chex counts traces by definition site, which every parametrized case shares.
    chex.clear_trace_counter()
    step = jax.jit(chex.assert_max_traces(c.env.step, n=1))
    # A second params object with other values but the same structure: no retrace.
    _, params2 = make_env(name, max_steps=7)
    out = step(jax.random.key(5), state, actions, params2)
    out = step(jax.random.key(6), out[1], actions[::-1], c.params)
    assert int(out[1].time) == 3  # every default episode is longer than 3 steps


@pytest.mark.parametrize("name", ENV_NAMES)
def test_rollout__vmaps_over_1024_copies(name):
    env = compiled(name).env
    carry, traj = rollout_out(name)
    t, b, a = ROLLOUT_STEPS, BATCH, env.num_agents
    _assert(traj.obs, (t, b, a, *env.obs_shape), jnp.float32, "obs")
    _assert(traj.rewards, (t, b, a), jnp.float32, "rewards")
    _assert(traj.done, (t, b), jnp.bool_, "done")
    _assert(traj.info["final_obs"], (t, b, a, *env.obs_shape), jnp.float32, "final_obs")
    _assert(carry.state.time, (b,), jnp.int32, "state.time")
    assert np.all(np.isfinite(traj.rewards)) and np.all(np.isfinite(traj.obs))
    # Copies are independent: their actions differ (1024 random streams).
    assert len({row.tobytes() for row in traj.actions.transpose(1, 0, 2)}) > 1


@pytest.mark.parametrize("name", ENV_NAMES)
def test_rollout__same_seed_bit_identical_other_seed_differs(name):
    c = compiled(name)
    first = rollout_out(name, seed=0)
    again = jax.device_get(c.rollout(jax.random.key(0), c.params))
    chex.assert_trees_all_equal(first, again)  # bit-identical, not allclose
    other = rollout_out(name, seed=1)
    same = jax.tree.leaves(jax.tree.map(np.array_equal, first, other))
    assert not all(same), "seeds 0 and 1 gave identical rollouts"


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_make__unknown_name_lists_registered_names():
    with pytest.raises(KeyError) as err:
        pj.make("no_such_env")
    for name in pj.registered_names():
        assert name in str(err.value)


@pytest.mark.parametrize("name", pj.registered_names())
def test_make__unknown_option_lists_valid_ones(name):
    with pytest.raises(TypeError, match="valid:") as err:
        pj.make(name, no_such_option=3)
    assert "no_such_option" in str(err.value) and "max_steps" in str(err.value)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_step__wrong_action_shape_or_dtype_fails_at_trace_time(name):
    c = compiled(name)
    env, a = c.env, c.env.num_agents
    _, state, *_ = c.first_step()
    key = jax.random.key(0)

    def trace(actions):  # eval_shape traces without running anything
        return jax.eval_shape(env.step, key, state, actions, c.params)

    for bad in (jnp.zeros((a + 1,), jnp.int32), jnp.zeros((4, a), jnp.int32)):
        with pytest.raises(ValueError, match=rf"shape \({a},\)"):
            trace(bad)
    with pytest.raises(TypeError, match="int32"):
        trace(jnp.zeros((a,), jnp.float32))


@pytest.mark.parametrize("name", ENV_NAMES)
def test_step__out_of_range_actions_are_clipped(name):
    c = compiled(name)
    n, a = c.env.num_actions, c.env.num_agents
    _, state, *_ = c.first_step()
    key = jax.random.key(3)
    for bad, clipped in ((n + 3, n - 1), (-5, 0)):
        got = c.step(key, state, jnp.full((a,), bad, jnp.int32), c.params)
        want = c.step(key, state, jnp.full((a,), clipped, jnp.int32), c.params)
        chex.assert_trees_all_equal(got, want)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_step__checked_mode_raises_on_out_of_range(name):
    env, params = make_env(name, checked=True)
    step = jax.jit(env.step)
    _, state = env.reset(jax.random.key(0), params)
    ok = jnp.zeros((env.num_agents,), jnp.int32)
    jax.block_until_ready(step(jax.random.key(1), state, ok, params))  # in range: fine
    bad = ok.at[-1].set(env.num_actions)
    with pytest.raises(Exception, match="out of range"):
        jax.block_until_ready(step(jax.random.key(1), state, bad, params))


@pytest.mark.parametrize("name", ENV_NAMES)
@pytest.mark.parametrize("max_steps", [0, -3])
def test_make__non_positive_max_steps_rejected_before_compute(name, max_steps):
    with pytest.raises(ValueError, match="max_steps"):
        if name == TOY:  # the toy is not registered: validate as make does
            env, params = make_env(name, max_steps=max_steps)
            env.validate_params(params)
        else:
            pj.make(name, max_steps=max_steps)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_validate_params__traced_params_pass_concrete_bad_ones_raise(name):
    env, params = make_env(name)
    bad = params.replace(max_steps=0)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        env.validate_params(bad)
    # Inside jit the check is skipped (nothing concrete to check), not an error.
    jax.jit(lambda p: env.validate_params(p) or p.max_steps)(params)


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------
@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry, restored after the test."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_register__user_env_is_made_with_static_and_traced_overrides(scratch_registry):
    pj.register("my_counter", make_counter)
    assert "my_counter" in pj.registered_names()
    env, params = pj.make("my_counter", size=4, num_agents=3, max_steps=2, goal=1)
    assert (env.size, env.num_agents, env.obs_shape) == (4, 3, (5,))
    assert (params.max_steps, params.goal) == (2, 1)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (3, 5)
    # goal 1 is reached by agent 0 acting 1: terminated, not truncated.
    _, _, rewards, done, info = env.step(
        jax.random.key(1), state, jnp.array([1, 0, 2]), params
    )
    np.testing.assert_array_equal(rewards, [1.0, 0.0, 2.0])
    assert bool(done) and bool(info["terminated"]) and not bool(info["truncated"])


def test_register__duplicate_name_raises_unless_overwrite(scratch_registry):
    pj.register("my_counter", make_counter)
    with pytest.raises(ValueError, match="already registered"):
        pj.register("my_counter", make_counter)
    pj.register("my_counter", lambda: Counter(size=2), overwrite=True)
    assert pj.make("my_counter")[0].size == 2


def test_register__user_env_params_validated_by_make(scratch_registry):
    pj.register("my_counter", make_counter)
    with pytest.raises(ValueError, match="max_steps"):
        pj.make("my_counter", max_steps=0)
    with pytest.raises(TypeError, match="valid: .*goal"):
        pj.make("my_counter", gaol=3)


def test_step__termination_on_the_time_limit_step_is_not_truncation():
    env, params = make_env(TOY, max_steps=2, goal=2)
    step = compiled(TOY).step  # same structure as the default toy params: no retrace
    _, state = env.reset(jax.random.key(0), params)
    flags = []
    for t in range(2):
        _, state, _, done, info = step(
            jax.random.key(t), state, jnp.array([1, 0]), params
        )
        flags.append((bool(done), bool(info["terminated"]), bool(info["truncated"])))
    # agent 0's count reaches the goal 2 on step 2, which is also the time limit
    assert flags == [(False, False, False), (True, True, False)]
