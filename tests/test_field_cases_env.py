"""Field cases C02, C04, C05, C07, C08, C12, C18 (``/work/shared/cases/README.md``) on
every registered environment and on the hand-computable toy ``Counter`` (C20: the toy's
golden values come from explicitly placed agents, not from a seed's draws).

C01, C10 and C11 (the wrappers) are in ``test_env_wrappers.py``.
"""

from __future__ import annotations

import copy
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy_env import ENV_NAMES, TOY, CounterState, make_env

from pain_jax.envs.wrappers import random_policy, rollout

T_LONG = 1000

# Documented state of each environment right after reset (C04):
# field -> (shape, dtype, value after reset or None when random).
I32, F32 = jnp.int32, jnp.float32


def _matrix_state(env):
    return {
        "memory": ((2,), I32, 0),  # START
        "time": ((), I32, 0),
        "returns": ((2,), F32, 0.0),
        "cooperations": ((2,), I32, 0),
        "outcomes": ((4,), I32, 0),
    }


def _n_pd_state(env):
    n = env.num_agents
    return {
        "last_actions": ((n,), I32, -1),  # no previous action
        "time": ((), I32, 0),
        "returns": ((n,), F32, 0.0),
        "cooperations": ((n,), I32, 0),
        "cooperator_counts": ((n + 1,), I32, 0),
    }


def _coin_game_state(env):
    n = env.num_agents
    return {
        "agent_pos": ((n, 2), I32, None),  # random cells
        "coin_pos": ((n, 2), I32, None),
        "coin_present": ((n,), jnp.bool_, None),  # random first colour
        "time": ((), I32, 0),
        "episode_return": ((n,), F32, 0.0),
        "pickups": ((n,), I32, 0),
        "own_pickups": ((n,), I32, 0),
        "coins_lost": ((n,), I32, 0),
    }


def _toy_state(env):
    n = env.num_agents
    return {
        "time": ((), I32, 0),
        "pos": ((n,), I32, None),
        "counts": ((n,), I32, 0),
        "returns": ((n,), F32, 0.0),
    }


#: name -> (documented state after reset, whether reset is random)
def _pain_grid_state(env):
    a, r, k = env.num_agents, env.num_resources, env.num_hazards
    return {
        "agent_pos": ((a, 2), I32, None),
        "heading": ((a,), I32, None),
        "resource_pos": ((r, 2), I32, None),
        "resource_present": ((r,), jnp.bool_, True),
        "hazard_pos": ((k, 2), I32, None),
        "hazard_present": ((k,), jnp.bool_, True),
        "time": ((), I32, 0),
        "harm": ((a, a), F32, 0.0),
        "help": ((a, a), F32, 0.0),
        "hazard_hurt": ((a,), F32, 0.0),
        "episode_return": ((a,), F32, 0.0),
        "harm_total": ((a, a), F32, 0.0),
        "help_total": ((a, a), F32, 0.0),
        "resources_collected": ((a,), I32, 0),
        "hazard_damage_total": ((a,), F32, 0.0),
        "attacks": ((a,), I32, 0),
    }


ENV_FACTS = {
    "ipd": (_matrix_state, False),
    "imp": (_matrix_state, False),
    "chicken": (_matrix_state, False),
    "stag_hunt": (_matrix_state, False),
    "n_pd": (_n_pd_state, False),
    "coin_game": (_coin_game_state, True),
    "pain_grid": (_pain_grid_state, True),
    TOY: (_toy_state, True),
}


def facts(name):
    if name not in ENV_FACTS:
        pytest.fail(f"document {name!r}'s reset state in ENV_FACTS of this file (C04)")
    return ENV_FACTS[name]


# --------------------------------------------------------------------------------------
# shared compiled functions
# --------------------------------------------------------------------------------------
@functools.cache
def single_run(name: str):
    """Jitted ``(key, params) -> (obs0, state0, per-step outputs)`` of one copy for
    ``T_LONG`` random steps; per-step outputs are ``(actions, obs, state, rewards,
    done, info)`` with a leading time axis."""
    env, _ = make_env(name)
    policy = env.action_space()

    @jax.jit
    def run(key, params):
        k_reset, k_scan = jax.random.split(key)
        obs0, state0 = env.reset(k_reset, params)

        def one(state, k):
            k_act, k_step = jax.random.split(k)
            actions = policy.sample(k_act, (env.num_agents,))
            obs, state, rewards, done, info = env.step(k_step, state, actions, params)
            return state, (actions, obs, state, rewards, done, info)

        _, outs = jax.lax.scan(one, state0, jax.random.split(k_scan, T_LONG))
        return obs0, state0, outs

    return env, run


@functools.cache
def run_with(name: str, max_steps: int, seed: int = 0):
    env, run = single_run(name)
    _, params = make_env(name, max_steps=max_steps)
    return jax.device_get(run(jax.random.key(seed), params))


# --------------------------------------------------------------------------------------
# C02 counters advance, C05 terminal step, C07 done timing
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ENV_NAMES)
def test_c02_counters__time_wraps_and_done_at_5_and_10(name):
    _, _, (_, _, state, _, done, info) = run_with(name, 5)
    np.testing.assert_array_equal(state.time[:10], [1, 2, 3, 4, 0, 1, 2, 3, 4, 0])
    np.testing.assert_array_equal(np.flatnonzero(done[:10]) + 1, [5, 10])
    assert not info["terminated"][:10].any()
    np.testing.assert_array_equal(info["episode"]["length"][:10], [1, 2, 3, 4, 5] * 2)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_c02_counters__no_state_field_is_frozen(name):
    # Over 1000 random steps every state field must change at some step: a field
    # that never moves is a counter nobody advances.
    _, state0, (*_, state, _, _, _) = run_with(name, 5)
    for path, first, seq in zip(
        jax.tree_util.tree_leaves_with_path(state0),
        jax.tree.leaves(state0),
        jax.tree.leaves(state),
        strict=True,
    ):
        moved = np.any(seq != first[None], axis=tuple(range(1, seq.ndim)))
        assert moved.any(), f"state field {jax.tree_util.keystr(path[0])} never changes"


@functools.cache
def toy_step():
    env, _ = make_env(TOY)
    return env, jax.jit(env.step)


def test_c02_counters__toy_every_field_changes_as_hand_computed():
    env, step = toy_step()
    _, params = make_env(TOY, max_steps=5)
    state = CounterState(
        time=jnp.int32(0),
        pos=jnp.array([0, 4], jnp.int32),
        counts=jnp.zeros(2, jnp.int32),
        returns=jnp.zeros(2, jnp.float32),
    )
    actions = jnp.array([1, 2], jnp.int32)  # right, left
    for t in range(1, 5):
        _, state, rewards, done, _ = step(jax.random.key(t), state, actions, params)
        assert int(state.time) == t and not bool(done)
        np.testing.assert_array_equal(state.pos, [t % 5, (4 - t) % 5])
        np.testing.assert_array_equal(state.counts, [t, 2 * t])
        np.testing.assert_array_equal(state.returns, [t, 2 * t])
        np.testing.assert_array_equal(rewards, [1.0, 2.0])


@pytest.mark.parametrize("name", ENV_NAMES)
def test_c05_terminal_step__done_pattern_and_final_obs(name):
    env, _ = make_env(name)
    obs0, _, (_, obs, state, _, done, info) = run_with(name, 3)
    np.testing.assert_array_equal(done[:7], [0, 0, 1, 0, 0, 1, 0])
    final = info["final_obs"]
    not_done = ~done
    # Not done: the returned observation is the true one.
    np.testing.assert_array_equal(final[not_done], obs[not_done])
    # Done: the returned state/observation are the next episode's first.
    assert np.all(state.time[done] == 0)
    if not facts(name)[1]:  # deterministic reset: the first obs is known
        np.testing.assert_array_equal(obs[done], np.broadcast_to(obs0, obs[done].shape))


def test_c05_terminal_step__toy_final_obs_is_the_true_last_one():
    env, step = toy_step()
    _, params = make_env(TOY, max_steps=3)
    state = CounterState(
        time=jnp.int32(0),
        pos=jnp.array([2, 2], jnp.int32),
        counts=jnp.zeros(2, jnp.int32),
        returns=jnp.zeros(2, jnp.float32),
    )
    actions = jnp.array([1, 0], jnp.int32)  # agent 0 right, agent 1 stays
    pos, dones = np.array([2, 2]), []
    for t in range(7):
        obs, state, _, done, info = step(jax.random.key(t), state, actions, params)
        dones.append(bool(done))
        pos = (pos + [1, 0]) % 5
        want = np.zeros((2, 6), np.float32)  # the true observation after this step
        want[[0, 1], pos] = 1.0
        want[:, 5] = (t % 3 + 1) / 3
        np.testing.assert_allclose(info["final_obs"], want, rtol=1e-6)
        if done:  # the returned obs is the new episode's first: time 0, new layout
            assert int(state.time) == 0 and bool(info["truncated"])
            first = np.zeros((2, 6), np.float32)
            first[[0, 1], np.asarray(state.pos)] = 1.0
            np.testing.assert_array_equal(obs, first)
            pos = np.asarray(state.pos)
        else:
            np.testing.assert_allclose(obs, want, rtol=1e-6)
    assert dones == [False, False, True, False, False, True, False]


@pytest.mark.parametrize("name", ENV_NAMES)
def test_c07_done_timing__limit_200_over_1000_steps(name):
    *_, (_, _, _, rewards, done, info) = run_with(name, 200)
    np.testing.assert_array_equal(np.flatnonzero(done), [199, 399, 599, 799, 999])
    assert not np.any(done[1:] & done[:-1])
    np.testing.assert_array_equal(info["episode"]["length"][done], [200] * 5)
    assert not info["terminated"].any()
    # Each episode's logged return is the sum of its 200 rewards, last step included
    # (statistics are read before the reset, C09).
    np.testing.assert_allclose(
        info["episode"]["return"][done], rewards.reshape(5, 200, -1).sum(1), rtol=1e-5
    )


# --------------------------------------------------------------------------------------
# C04 reset state is complete
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ENV_NAMES)
def test_c04_reset_state__documented_fields_shapes_dtypes_values(name):
    env, _ = single_run(name)
    obs0, state0, (_, _, state, *_r) = run_with(name, 5)
    spec = facts(name)[0](env)
    fields = {f: getattr(state0, f) for f in state0.__dataclass_fields__}
    assert set(fields) == set(spec), f"state fields {sorted(fields)} != documented"
    for field, (shape, dtype, value) in spec.items():
        x = np.asarray(fields[field])
        assert x.shape == shape, f"{field}: shape {x.shape}, documented {shape}"
        assert x.dtype == dtype, f"{field}: dtype {x.dtype}, documented {dtype}"
        if value is not None:
            np.testing.assert_array_equal(x, np.full(shape, value), err_msg=field)
    assert int(state.time[0]) == 1  # one step later


@pytest.mark.parametrize("name", ENV_NAMES)
def test_c04_reset_state__no_narrow_or_64_bit_fields(name):
    _, state0, _ = run_with(name, 5)
    allowed = {np.dtype(np.int32), np.dtype(np.float32), np.dtype(np.bool_)}
    for path, x in jax.tree_util.tree_leaves_with_path(state0):
        assert np.asarray(x).dtype in allowed, f"{jax.tree_util.keystr(path)}: {x.dtype}"


# --------------------------------------------------------------------------------------
# C08 only finished copies reset
# --------------------------------------------------------------------------------------
@functools.cache
def vmapped_reset_step(name: str):
    env, _ = make_env(name)
    return jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))  # params vmapped


@pytest.mark.parametrize("name", ENV_NAMES)
def test_c08_vmap__only_the_finished_copy_resets(name):
    env, params = make_env(name)
    reset, step = vmapped_reset_step(name)

    def pair(max_steps):
        both = jax.tree.map(lambda *x: jnp.stack(x), params, params)
        return both.replace(max_steps=jnp.array(max_steps, jnp.int32))

    mixed, alone = pair([2, 5]), pair([5, 5])  # `alone`: nobody resets next to copy 1
    keys = jax.random.split(jax.random.key(8), 2)
    _, state = reset(keys, mixed)
    ref_state = state
    actions = jnp.stack([jnp.arange(env.num_agents) % env.num_actions] * 2)
    times = []
    for t in range(3):
        k = jax.random.split(jax.random.key(100 + t), 2)
        obs, state, _, done, info = step(k, state, actions, mixed)
        ref_obs, ref_state, *_ = step(k, ref_state, actions, alone)
        times.append(np.asarray(state.time).tolist())
        np.testing.assert_array_equal(done, [t == 1, False])
        # copy 1 is untouched by copy 0's reset: same obs/state as without it
        np.testing.assert_array_equal(obs[1], ref_obs[1])
        np.testing.assert_array_equal(info["final_obs"][1], obs[1])
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(ref_state), strict=True):
            np.testing.assert_array_equal(a[1], b[1])
    assert times == [[1, 1], [0, 2], [1, 3]]


# --------------------------------------------------------------------------------------
# C12 batched cond is safe: finite outputs and gradients on mixed done flags
# --------------------------------------------------------------------------------------
def _float_leaves(tree):
    leaves, treedef = jax.tree.flatten(tree)
    idx = [
        i
        for i, x in enumerate(leaves)
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
    ]
    return leaves, treedef, idx


@functools.cache
def batch_objective(name: str):
    """Jitted ``(floats, ...) -> (value, grad)`` of the sum of every float output of
    one batched step w.r.t. the float params fields (``max_steps`` 1,2,1,3: mixed
    done flags)."""
    env, params = make_env(name)
    leaves, treedef, idx = _float_leaves(params)
    batch = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * 4), params)
    batch = batch.replace(max_steps=jnp.array([1, 2, 1, 3], jnp.int32))
    leaves, _, _ = _float_leaves(batch)

    def objective(floats, keys, actions):
        full = list(leaves)
        for i, f in zip(idx, floats, strict=True):
            full[i] = f
        p = jax.tree.unflatten(treedef, full)
        _, state = jax.vmap(env.reset)(keys[0], p)
        obs, state, rewards, done, info = jax.vmap(env.step)(keys[1], state, actions, p)
        outs = [obs, rewards, info["final_obs"]]
        outs += [
            x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)
        ]
        return sum(jnp.sum(x) for x in outs), (outs, done)

    floats = [leaves[i].astype(jnp.float32) for i in idx]
    return env, floats, jax.jit(jax.value_and_grad(objective, has_aux=True))


@pytest.mark.parametrize("name", ENV_NAMES)
def test_c12_mixed_done__outputs_and_param_gradients_finite(name):
    env, floats, grad = batch_objective(name)
    keys = jax.random.split(jax.random.key(12), (2, 4))
    actions = jax.random.randint(
        jax.random.key(13), (4, env.num_agents), 0, env.num_actions
    )
    args = (keys, actions)
    (_, (outs, done)), grads = grad(floats, *args)
    np.testing.assert_array_equal(done, [True, False, True, False])
    for x in outs:
        assert np.all(np.isfinite(x))
    assert floats, f"{name} has no float params to differentiate"
    for g in grads:
        assert np.all(np.isfinite(g))
    # The gradient is the true one: central finite differences along a direction.
    direction = [
        jax.random.normal(jax.random.key(i), f.shape) for i, f in enumerate(floats)
    ]
    eps = 1e-2
    shifted = [
        grad([f + sign * eps * d for f, d in zip(floats, direction, strict=True)], *args)
        for sign in (1.0, -1.0)
    ]
    plus, minus = (out[0][0] for out in shifted)
    fd = (plus - minus) / (2 * eps)
    analytic = sum(jnp.vdot(g, d) for g, d in zip(grads, direction, strict=True))
    np.testing.assert_allclose(analytic, fd, rtol=1e-3, atol=1e-3)


def test_c12_mixed_done__toy_reward_gradient_hand_computed():
    env, floats, grad = batch_objective(TOY)
    keys = jax.random.split(jax.random.key(12), (2, 4))
    actions = jnp.array([[1, 2], [0, 1], [2, 2], [1, 0]], jnp.int32)
    (_, (outs, done)), grads = grad(floats, keys, actions)
    np.testing.assert_array_equal(done, [True, False, True, False])
    # floats = (reward_scale,).  d/ds of sum(rewards) + sum(state.returns): the
    # rewards give sum(a) per copy; the returns add sum(a) again only in the copies
    # that did not reset (a finished copy's returns restart at 0).
    np.testing.assert_allclose(grads[0], [3.0, 2.0 * 1, 4.0, 2.0 * 1], rtol=1e-6)


# --------------------------------------------------------------------------------------
# C18 keys are never reused
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ENV_NAMES)
def test_c18_reset__sixteen_resets_differ_when_reset_is_random(name):
    env, params = make_env(name)
    obs, state = jax.jit(jax.vmap(env.reset, (0, None)))(
        jax.random.split(jax.random.key(18), 16), params
    )
    distinct = {o.tobytes() for o in np.asarray(obs)}
    if facts(name)[1]:
        assert len(distinct) > 1, "16 random resets gave identical layouts"
    else:
        assert len(distinct) == 1, "reset documented as deterministic varies with key"


@pytest.mark.parametrize("name", ENV_NAMES)
def test_c18_keys__distinct_and_clean_under_debug_key_reuse(name):
    env, params = make_env(name)
    seen = []

    def record(data):
        data = np.asarray(data)
        seen.extend(map(bytes, data.reshape(-1, data.shape[-1]).view(np.uint8)))

    def spy(fn):
        def wrapped(key, *args):
            jax.debug.callback(record, jax.random.key_data(key))
            return fn(key, *args)

        return wrapped

    spied = copy.copy(env)  # same config; the copy's methods record their keys
    spied.reset_env, spied.step_env = spy(env.reset_env), spy(env.step_env)
    policy = spy(random_policy(env))
    previous = jax.config.jax_debug_key_reuse
    jax.config.update("jax_debug_key_reuse", True)  # raises on any reuse
    try:
        out = jax.jit(lambda k: rollout(spied, policy, k, params, 5, 3))(
            jax.random.key(0)
        )
        jax.block_until_ready(out)
    finally:
        jax.config.update("jax_debug_key_reuse", previous)
    # 3 initial resets, then per step 1 policy key and 3 step + 3 reset keys.
    assert len(seen) == 3 + 5 * 7
    assert len(set(seen)) == len(seen), "a key was handed out twice"
