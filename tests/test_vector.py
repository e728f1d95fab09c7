"""``pain_jax.envs.vector``: one key per batch step, auto-reset only where done.

The reference is ``Environment.step``'s per-copy contract, evaluated copy by copy in
Python (``_step_no_reset`` then, where done, ``reset_env``) with the per-copy keys
that ``vector``'s docstring promises; done flags, terminated/truncated and episode
statistics are also checked against hand-computed values.  Each jitted function is
traced once for the whole file (``chex.assert_max_traces``).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy_env import Counter

import pain_jax as pj
from pain_jax.envs.api import split_key
from pain_jax.envs.coin_game import RIGHT, STAY, CoinGameState
from pain_jax.envs.vector import reset_batch, step_batch

COIN, COIN_PARAMS = pj.make("coin_game")
# Per-copy episode lengths: copies finish at different steps (mixed done flags).
MAX_STEPS = np.array([1, 2, 3, 4, 5, 50], np.int32)
E = len(MAX_STEPS)


def _per_copy(params, n: int, **fields):
    """``params`` with a leading copy axis on every leaf, ``fields`` set per copy."""
    params = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n,)), params)
    return params.replace(**{k: jnp.asarray(v) for k, v in fields.items()})


PER_COPY = _per_copy(COIN_PARAMS, E, max_steps=MAX_STEPS)


@jax.jit
@chex.assert_max_traces(n=1)
def coin_reset(key):
    return reset_batch(COIN, key, PER_COPY, E, params_axis=0)


@jax.jit
@chex.assert_max_traces(n=1)
def coin_step(key, states, actions):
    return step_batch(COIN, key, states, actions, PER_COPY, params_axis=0)


@jax.jit
@chex.assert_max_traces(n=1)
def coin_shared_step(key, states, actions):
    """Shared params (no params axis), 64 copies."""
    return step_batch(COIN, key, states, actions, COIN_PARAMS)


_ref_step = jax.jit(COIN._step_no_reset)
_ref_reset = jax.jit(COIN.reset_env)


def _copy(tree, e):
    return jax.tree.map(lambda x: x[e], tree)


def _reference(key, states, actions):
    """``Environment.step``'s contract per copy, with vector's documented keys."""
    k_step, k_reset = split_key(key)
    ks, kr = split_key(k_step, E), split_key(k_reset, E)
    outs = []
    for e in range(E):
        p = _copy(PER_COPY, e)
        obs, state, rew, done, info = _ref_step(ks[e], _copy(states, e), actions[e], p)
        if bool(done):
            obs, state = _ref_reset(kr[e], p)
        outs.append((obs, state, rew, done, info))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)


def _assert_trees_equal(a, b):
    chex.assert_trees_all_equal_structs(a, b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_step_batch__matches_per_copy_step_contract_with_mixed_done():
    key = jax.random.key(7)
    _, states = coin_reset(key)
    returns = np.zeros((E, 2), np.float32)
    for t in range(1, 13):
        key, k_act, k_step = jax.random.split(key, 3)
        actions = jax.random.randint(k_act, (E, 2), 0, 5, jnp.int32)
        got = coin_step(k_step, states, actions)
        _assert_trees_equal(got, _reference(k_step, states, actions))
        obs, states, rewards, done, info = got
        # copy e (episode length m) finishes exactly at steps t = m, 2m, ...
        np.testing.assert_array_equal(np.asarray(done), t % MAX_STEPS == 0)
        np.testing.assert_array_equal(np.asarray(info["truncated"]), t % MAX_STEPS == 0)
        assert not np.any(np.asarray(info["terminated"]))
        returns += np.asarray(rewards)
        d = np.asarray(done)
        np.testing.assert_array_equal(
            np.asarray(info["episode"]["length"])[d], MAX_STEPS[d]
        )
        np.testing.assert_allclose(np.asarray(info["episode"]["return"])[d], returns[d])
        returns[d] = 0.0
        # finished copies start over at time 0, the others count on
        expected_time = np.where(d, 0, t % MAX_STEPS)
        np.testing.assert_array_equal(np.asarray(states.time), expected_time)
        np.testing.assert_array_equal(
            np.asarray(obs), np.asarray(jax.vmap(COIN.get_obs)(states))
        )


def test_step_batch__only_finished_copies_reset_c08():
    env = Counter(num_agents=1, size=5)
    params = _per_copy(env.default_params(), 2, max_steps=[2, 5], goal=[-1, -1])
    _, states = reset_batch(env, jax.random.key(0), params, 2, params_axis=0)
    pos0 = np.asarray(states.pos)
    step = jax.jit(lambda k, s, a: step_batch(env, k, s, a, params, params_axis=0))
    ones = jnp.ones((2, 1), jnp.int32)  # action 1: move +1, count +1
    for t in (1, 2):
        obs, states, _, done, info = step(jax.random.key(t), states, ones)
    np.testing.assert_array_equal(np.asarray(done), [True, False])
    np.testing.assert_array_equal(np.asarray(states.time), [0, 2])
    np.testing.assert_array_equal(np.asarray(states.counts), [[0], [2]])
    # the unfinished copy's observation is untouched: its post-step observation
    np.testing.assert_array_equal(np.asarray(obs[1]), np.asarray(info["final_obs"][1]))
    expected = np.zeros(6, np.float32)
    expected[(pos0[1, 0] + 2) % 5], expected[5] = 1.0, 2 / 5
    np.testing.assert_allclose(np.asarray(obs[1, 0]), expected)
    obs, states, _, done, _ = step(jax.random.key(3), states, ones)
    np.testing.assert_array_equal(np.asarray(states.time), [1, 3])
    np.testing.assert_array_equal(np.asarray(done), [False, False])


def test_step_batch__terminated_and_truncated_per_copy():
    env = Counter(num_agents=1, size=5)
    # copy 0 reaches its goal at step 2; copy 1 hits its time limit at step 3;
    # copy 2 reaches its goal exactly at its time limit (termination wins).
    params = _per_copy(env.default_params(), 3, max_steps=[5, 3, 4], goal=[2, -1, 4])
    _, states = reset_batch(env, jax.random.key(1), params, 3, params_axis=0)
    step = jax.jit(lambda k, s, a: step_batch(env, k, s, a, params, params_axis=0))
    expected = {  # step -> (terminated, truncated)
        1: ([0, 0, 0], [0, 0, 0]),
        2: ([1, 0, 0], [0, 0, 0]),
        3: ([0, 0, 0], [0, 1, 0]),
        4: ([1, 0, 1], [0, 0, 0]),  # copy 0 counted to 2 again
    }
    for t, (term, trunc) in expected.items():
        _, states, _, done, info = step(
            jax.random.key(t), states, jnp.ones((3, 1), jnp.int32)
        )
        np.testing.assert_array_equal(
            np.asarray(info["terminated"]), np.array(term, bool)
        )
        np.testing.assert_array_equal(
            np.asarray(info["truncated"]), np.array(trunc, bool)
        )
        np.testing.assert_array_equal(
            np.asarray(done), np.array(term, bool) | np.array(trunc, bool)
        )
    # copies 0 and 2 just restarted, copy 1 restarted at step 3
    np.testing.assert_array_equal(np.asarray(states.time), [0, 1, 0])


def _pickup_state(copies: int) -> CoinGameState:
    """Agent 0 at (0, 0) next to the only coin (its own) at (0, 1); agent 1 at (2, 2)."""
    one = CoinGameState(
        agent_pos=jnp.array([[0, 0], [2, 2]], jnp.int32),
        coin_pos=jnp.array([[0, 1], [0, 0]], jnp.int32),
        coin_present=jnp.array([True, False]),
        time=jnp.zeros((), jnp.int32),
        episode_return=jnp.zeros(2, jnp.float32),
        pickups=jnp.zeros(2, jnp.int32),
        own_pickups=jnp.zeros(2, jnp.int32),
        coins_lost=jnp.zeros(2, jnp.int32),
    )
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (copies, *x.shape)), one)


def test_step_batch__copies_draw_independently_and_deterministically():
    states = _pickup_state(64)
    actions = jnp.tile(jnp.array([[RIGHT, STAY]], jnp.int32), (64, 1))
    _, s1, rew, _, _ = coin_shared_step(jax.random.key(3), states, actions)
    np.testing.assert_array_equal(np.asarray(rew), np.tile([[1.0, 0.0]], (64, 1)))
    # the respawned coin (random colour, random free cell) differs across copies
    new_coin = np.concatenate(
        [np.asarray(s1.coin_present), np.asarray(s1.coin_pos).reshape(64, -1)], axis=1
    )
    assert len({tuple(row) for row in new_coin}) > 8
    _, s2, _, _, _ = coin_shared_step(jax.random.key(3), states, actions)
    _assert_trees_equal(s1, s2)
    _, s3, _, _, _ = coin_shared_step(jax.random.key(4), states, actions)
    assert not np.array_equal(np.asarray(s1.coin_pos), np.asarray(s3.coin_pos))


def test_reset_batch__copies_differ_and_repeat_per_key():
    obs, states = coin_reset(jax.random.key(11))
    assert obs.shape == (E, 2, 3, 3, 4)
    assert len({tuple(np.asarray(p).ravel()) for p in states.agent_pos}) > 1
    _assert_trees_equal(coin_reset(jax.random.key(11)), (obs, states))


def test_step_batch__bad_action_shape_raises_with_expected_shape():
    _, states = coin_reset(jax.random.key(0))
    with pytest.raises(ValueError, match=r"\(num_envs, 2\)"):
        step_batch(
            COIN, jax.random.key(0), states, jnp.zeros((E,), jnp.int32), PER_COPY, 0
        )
    with pytest.raises(ValueError, match=r"\(2,\)"):
        step_batch(
            COIN, jax.random.key(0), states, jnp.zeros((E, 3), jnp.int32), PER_COPY, 0
        )
