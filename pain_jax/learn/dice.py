"""DiCE: the magic-box objective whose derivatives of every order are unbiased
estimators of the derivatives of the expected return (Foerster et al., 2018).

Shapes: ``(T, ...)`` with a leading time axis; log-probabilities are those of the
actions actually taken, summed over all agents whose policies the gradient should
flow through (both agents for opponent shaping).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def magic_box(x: jax.Array) -> jax.Array:
    """``exp(x - stop_gradient(x))``: evaluates to 1, ``d box = box * dx``."""
    return jnp.exp(x - jax.lax.stop_gradient(x))


def _discounts(length: int, gamma, dtype) -> jax.Array:
    return gamma ** jnp.arange(length, dtype=dtype)


def _expand(x: jax.Array, like: jax.Array) -> jax.Array:
    return x.reshape(x.shape + (1,) * (like.ndim - x.ndim))


def dice_objective(log_probs: jax.Array, rewards: jax.Array, gamma) -> jax.Array:
    """``sum_t gamma^t r_t box(W_{<=t})`` with ``W`` the cumulative log-probs.

    Args:
      log_probs: ``(T, ...)`` sum of the log-probs of all dependent actions at ``t``.
      rewards: ``(T, ...)`` rewards of the agent whose objective this is.

    Returns the per-batch objective ``(...)``; its value is the discounted return.
    """
    w = jnp.cumsum(log_probs, axis=0)
    disc = _expand(_discounts(rewards.shape[0], gamma, rewards.dtype), rewards)
    return jnp.sum(disc * rewards * magic_box(w), axis=0)


def dice_objective_baseline(
    log_probs: jax.Array, advantages: jax.Array, gamma
) -> jax.Array:
    """Variance-reduced DiCE: ``sum_t gamma^t A_t [box(W_{<=t}) - box(W_{<t})]``.

    ``advantages`` (e.g. from a learned critic) are detached here, so no gradient of
    any order reaches the baseline's parameters through this objective.  Its value is
    0; its first derivative is the advantage policy gradient.
    """
    advantages = jax.lax.stop_gradient(advantages)
    w = jnp.cumsum(log_probs, axis=0)
    w_before = w - log_probs
    disc = _expand(_discounts(advantages.shape[0], gamma, advantages.dtype), advantages)
    return jnp.sum(disc * advantages * (magic_box(w) - magic_box(w_before)), axis=0)
