"""Fixed memory-one strategies as policies for the sampled matrix games.

A strategy is the same 5-vector ``P(cooperate | START, CC, CD, DC, DD)`` that the
exact game (``pain_jax.envs.matrix_exact``) takes, listed in
:data:`pain_jax.envs.payoffs.STRATEGIES` (always cooperate, always defect,
tit-for-tat, grim trigger, random), so one table serves both games.  In the sampled
game a strategy reads the one-hot memory-one observation of
:class:`pain_jax.envs.matrix.MatrixGame` and samples an action.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pain_jax.envs.payoffs import strategy


def strategy_probs(name: str) -> jax.Array:
    """``P(cooperate | state)`` of a named fixed strategy, float32 ``(5,)``."""
    return jnp.asarray(strategy(name), jnp.float32)


def act(key: jax.Array, probs: jax.Array, obs: jax.Array) -> jax.Array:
    """Sample one action of a memory-one policy.

    Args:
      key: PRNG key (consumed).
      probs: float32 ``(5,)``, ``P(cooperate | START, CC, CD, DC, DD)``.
      obs: float32 ``(5,)``, one-hot memory-one state from the player's own view.

    Returns:
      int32 ``()``: 0 = cooperate, 1 = defect.  Probabilities 0 and 1 are exact
      (``uniform`` draws lie in ``[0, 1)``), so deterministic strategies never slip.
    """
    p_coop = jnp.dot(obs, probs)
    cooperate = jax.random.uniform(key) < p_coop
    return jnp.where(cooperate, 0, 1).astype(jnp.int32)


def act_all(key: jax.Array, probs: jax.Array, obs: jax.Array) -> jax.Array:
    """One action per agent: ``probs`` float32 ``(A, 5)``, ``obs`` float32 ``(A, 5)``
    -> int32 ``(A,)``, each agent with its own key split from ``key``."""
    keys = jax.random.split(key, obs.shape[0])
    return jax.vmap(act)(keys, probs, obs)


def rollout(key: jax.Array, env, params, probs: jax.Array, num_steps: int):
    """Play ``num_steps`` steps of a two-player matrix game with fixed memory-one
    policies (``probs`` float32 ``(2, 5)``, one row per player).

    ``num_steps`` is static; jit the caller.  Returns a dict of arrays with a leading
    time axis ``T = num_steps``: ``obs`` float32 ``(T, 2, 5)`` (seen before acting),
    ``actions`` int32 ``(T, 2)``, ``rewards`` float32 ``(T, 2)``, ``done`` bool
    ``(T,)`` and ``time`` int32 ``(T,)`` (the state's counter after the step).
    """
    key_reset, key_run = jax.random.split(key)
    obs, state = env.reset(key_reset, params)

    def body(carry, step_key):
        obs, state = carry
        key_act, key_step = jax.random.split(step_key)
        actions = act_all(key_act, probs, obs)
        next_obs, state, rewards, done, _ = env.step(key_step, state, actions, params)
        out = {
            "obs": obs,
            "actions": actions,
            "rewards": rewards,
            "done": done,
            "time": state.time,
        }
        return (next_obs, state), out

    _, traj = jax.lax.scan(body, (obs, state), jax.random.split(key_run, num_steps))
    return traj
