"""Advantage Alignment (Duque et al., ICLR 2025): the modified advantage.

For agent 1 against agent 2, at step ``t`` of an episode::

    A*_t = A1_t + beta * gamma * (sum_{k<t} gamma^(t-k) A1_k) * A2_t

``A1`` and ``A2`` are the agents' own advantages, each from its own critic (GAE); the
sum runs over the earlier steps of the *same* episode only.  The policy gradient
``E[sum_t A*_t grad log pi_1(a_t | s_t)]`` raises the probability of actions that
help the opponent when the interaction so far has gone well for agent 1 (and lowers
it when it has gone badly): reciprocity, without differentiating through the
opponent's learning.  Plugging ``A*`` into :func:`~pain_jax.learn.ppo.
policy_gradient_loss` gives the policy-gradient form; into :func:`~pain_jax.learn.
ppo.clipped_policy_loss` the proximal (PPO-clipped) form.

With more than two agents the opponent term uses the *sum* of the other agents'
advantages (each opponent's contribution to agent 1's shaping gradient adds up).

The usual ``gamma^t`` weight of the policy gradient is left out, as in common
practice (and in :mod:`pain_jax.learn.ppo`): every step of an episode counts alike.

A rollout that starts in the middle of an episode has no advantages for the steps
before it: the sum then starts at the rollout's first step (pass ``init`` to carry a
history across rollouts).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def discounted_past_sum(
    advantages: jax.Array, reset: jax.Array, gamma, init: jax.Array | None = None
) -> jax.Array:
    """``S_t = sum_{k<t} gamma^(t-k) A_k`` over the earlier steps of the same episode.

    Args:
      advantages: float32 ``(T, ...)``.
      reset: bool ``(T, ...)`` (broadcastable), ``t`` is the first step of an episode
        (then ``S_t = 0``); for a rollout this is the stored ``reset`` flag, i.e. the
        previous step's ``done``.
      gamma: discount (a traced scalar is fine).
      init: float32 ``(...)``, ``S + A`` of the step before ``t = 0`` (default 0).

    Returns float32 ``(T, ...)``.  Recursion: ``S_t = 0`` if ``reset_t`` else
    ``gamma * (S_{t-1} + A_{t-1})``.
    """
    advantages = jnp.asarray(advantages, jnp.float32)
    reset = jnp.broadcast_to(jnp.asarray(reset, bool), advantages.shape)
    last = jnp.zeros_like(advantages[0]) if init is None else init

    def forward(last, xs):
        adv, first = xs
        past = jnp.where(first, 0.0, gamma * last)
        return past + adv, past

    _, past = jax.lax.scan(forward, last, (advantages, reset))
    return past


def modified_advantage(
    own: jax.Array, other: jax.Array, reset: jax.Array, gamma, beta
) -> jax.Array:
    """``A*_t = A1_t + beta * gamma * S1_t * A2_t`` (see the module docstring).

    Args: ``own`` (A1) and ``other`` (A2) float32 ``(T, ...)``, ``reset`` bool
    ``(T, ...)`` (first step of an episode), ``gamma`` and ``beta`` scalars.
    Returns float32 ``(T, ...)``.
    """
    past = discounted_past_sum(own, reset, gamma)
    return own + beta * gamma * past * other


def aligned_advantages(advantages: jax.Array, reset: jax.Array, gamma, beta):
    """Modified advantages of every agent at once.

    Args:
      advantages: float32 ``(T, E, A)``, each agent's advantage from its own critic.
      reset: bool ``(T, E)``, first step of an episode.
    Returns float32 ``(T, E, A)``: agent ``i``'s ``A*`` with the sum of the other
    agents' advantages as the opponent term.
    """
    others = advantages.sum(axis=-1, keepdims=True) - advantages
    return modified_advantage(advantages, others, reset[..., None], gamma, beta)
