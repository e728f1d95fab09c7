"""Return and advantage estimators that respect episode boundaries.

Truncation (a time limit) is not termination: at a truncated step the target still
bootstraps from the critic's value of the *true* final observation, while at a
terminated step it does not.  Advantages never flow across an episode boundary.

Shapes: every array has a leading time axis ``T`` followed by any batch axes ``...``
(environments, agents); all are float32 except the bool flags.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def next_values(
    values: jax.Array, last_value: jax.Array, final_values: jax.Array, done: jax.Array
) -> jax.Array:
    """``V(s_{t+1})`` for every step, from the critic's outputs.

    Args:
      values: ``(T, ...)`` ``V(s_t)`` of the observations the agents acted on.
      last_value: ``(...)`` ``V(s_T)`` of the observation after the last step.
      final_values: ``(T, ...)`` ``V`` of ``info["final_obs"]`` (the true next
        observation, which differs from the returned one only when ``done``).
      done: ``(T, ...)`` bool, episode ended at step ``t`` (terminated or truncated).

    Returns ``(T, ...)``: ``final_values[t]`` where done, else ``values[t + 1]``.
    """
    shifted = jnp.concatenate([values[1:], last_value[None]], axis=0)
    return jnp.where(done, final_values, shifted)


def td_targets(
    rewards: jax.Array, next_value: jax.Array, terminated: jax.Array, gamma
) -> jax.Array:
    """One-step targets ``r_t + gamma (1 - terminated_t) V(s_{t+1})``, ``(T, ...)``."""
    return rewards + gamma * jnp.where(terminated, 0.0, next_value)


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_value: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma,
    lam,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation.

    Args:
      rewards, values, next_value: ``(T, ...)`` float32; ``next_value`` as built by
        :func:`next_values` (bootstrap for truncated steps included).
      terminated: ``(T, ...)`` bool, the episode ended in a terminal state at ``t``.
      done: ``(T, ...)`` bool, the episode ended at ``t`` (terminated or truncated);
        the recursion is cut there so no advantage crosses the boundary.
      gamma, lam: discount and GAE lambda (traced scalars are fine).

    Returns ``(advantages, targets)``, both ``(T, ...)``; ``targets = advantages +
    values`` are the critic's regression targets.
    """
    deltas = td_targets(rewards, next_value, terminated, gamma) - values
    continues = 1.0 - done.astype(deltas.dtype)

    def backward(carry, xs):
        delta, cont = xs
        adv = delta + gamma * lam * cont * carry
        return adv, adv

    _, adv = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, continues), reverse=True
    )
    return adv, adv + values


def discounted_returns(
    rewards: jax.Array, done: jax.Array, bootstrap: jax.Array, gamma
) -> jax.Array:
    """Monte-Carlo returns ``G_t = r_t + gamma * G_{t+1}``, reset at episode ends.

    ``bootstrap`` ``(...)`` is the value after the last step (0 if terminal).
    """

    def backward(carry, xs):
        r, d = xs
        g = r + gamma * jnp.where(d, 0.0, carry)
        return g, g

    _, g = jax.lax.scan(backward, bootstrap, (rewards, done), reverse=True)
    return g
