"""Exact (analytic) discounted values of two memory-one policies in a 2x2 iterated game.

Each player's policy is 5 numbers ``P(cooperate | start, CC, CD, DC, DD)`` from its
*own* view (own action first, see :mod:`pain_jax.envs.payoffs`).  The joint chain lives
on the 4 joint outcomes ``j = 2 * a1 + a2`` of the last round, indexed from player 1's
view (CC, CD, DC, DD).  With ``p0`` the distribution of the first joint move, ``P`` the
4x4 transition matrix and ``r_i`` player i's payoff in each joint outcome::

    V_i = p0^T (I - gamma P)^-1 r_i        (the first move's reward is counted)

Average reward per step is ``(1 - gamma) V_i``.  Everything is pure ``jax.numpy``:
differentiable in both policies, in the payoffs and in ``gamma``; ``vmap`` over policy
pairs or over params.  The 4x4 system is solved with ``jnp.linalg.solve`` (no inverse).
Fixed strategies (``payoffs.STRATEGIES``) are probabilities and plug straight into
:func:`exact_values`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pain_jax.envs import payoffs as pay


@struct.dataclass
class ExactGameParams:
    """Traced parameters of an exact iterated 2x2 game.

    Attributes:
      payoffs: float ``(2, 2, 2)``, ``payoffs[a1, a2] = (r1, r2)``; 0 = C, 1 = D.
      gamma: float ``()``, discount in [0, 1).
    """

    payoffs: jax.Array
    gamma: jax.Array


def exact_params(game: str = "ipd", dtype=jnp.float32, **overrides) -> ExactGameParams:
    """Default params of a named game (``payoffs.PAYOFFS``), with optional overrides.

    ``dtype`` sets the float type of every field (use float64 under
    ``jax.experimental.enable_x64`` for finite-difference checks).
    """
    if game not in pay.PAYOFFS:
        raise KeyError(f"unknown matrix game {game!r}; known: {', '.join(pay.PAYOFFS)}")
    table, gamma = pay.PAYOFFS[game]
    fields = {"payoffs": table, "gamma": gamma, **overrides}
    unknown = set(fields) - {"payoffs", "gamma"}
    if unknown:
        raise TypeError(f"unknown ExactGameParams fields: {sorted(unknown)}")
    if np.shape(fields["payoffs"]) != (2, 2, 2):
        raise ValueError(
            f"payoffs must have shape (2, 2, 2), got {np.shape(fields['payoffs'])}"
        )
    if np.ndim(fields["gamma"]) == 0 and not 0.0 <= float(fields["gamma"]) < 1.0:
        raise ValueError(
            f"gamma must be in [0, 1) for a finite value, got {fields['gamma']}"
        )
    return ExactGameParams(
        payoffs=jnp.asarray(fields["payoffs"], dtype),
        gamma=jnp.asarray(fields["gamma"], dtype),
    )


def swap_players(params: ExactGameParams) -> ExactGameParams:
    """The same game seen by player 2: ``swapped.payoffs[a2, a1] = (r2, r1)``.

    With own-view policies, ``exact_values(p2, p1, swap_players(g)) ==
    exact_values(p1, p2, g)[::-1]``; learners use it to write every update from the
    updating player's point of view.
    """
    return params.replace(payoffs=jnp.swapaxes(params.payoffs, 0, 1)[..., ::-1])


def joint_chain(p1: jax.Array, p2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """First-move distribution and transition matrix of the joint chain.

    Args:
      p1, p2: ``(5,)`` ``P(cooperate | start, CC, CD, DC, DD)``, each in its own view.
    Returns:
      ``p0`` ``(4,)`` and ``P`` ``(4, 4)`` over joint outcomes ``2 * a1 + a2``
      (rows: last outcome, columns: next outcome; rows sum to 1).
    """
    c1 = p1[1:]  # P(player 1 cooperates | last outcome j), j in player 1's view
    # player 2 sees the joint outcome (a1, a2) as (a2, a1): its CD is our DC
    c2 = jnp.stack([p2[1], p2[3], p2[2], p2[4]])
    a1 = jnp.stack([c1, 1.0 - c1], axis=-1)  # (4, 2): P(a1 | j)
    a2 = jnp.stack([c2, 1.0 - c2], axis=-1)  # (4, 2): P(a2 | j)
    trans = (a1[:, :, None] * a2[:, None, :]).reshape(4, 4)
    s1 = jnp.stack([p1[0], 1.0 - p1[0]])
    s2 = jnp.stack([p2[0], 1.0 - p2[0]])
    p0 = (s1[:, None] * s2[None, :]).reshape(4)
    return p0, trans


def discounted_occupancy(p1: jax.Array, p2: jax.Array, gamma: jax.Array) -> jax.Array:
    """``d = p0^T (I - gamma P)^-1`` ``(4,)``: discounted visits of each joint outcome.

    ``sum(d) = 1 / (1 - gamma)``.  Solved as ``(I - gamma P)^T d = p0``.
    """
    p0, trans = joint_chain(p1, p2)
    eye = jnp.eye(4, dtype=trans.dtype)
    return jnp.linalg.solve((eye - gamma * trans).T, p0)


def exact_values(p1: jax.Array, p2: jax.Array, params: ExactGameParams) -> jax.Array:
    """Discounted values ``(V_1, V_2)`` ``(2,)`` of two memory-one policies.

    ``p1``, ``p2``: ``(5,)`` probabilities of cooperating (own view).
    """
    occ = discounted_occupancy(p1, p2, params.gamma)
    return occ @ params.payoffs.reshape(4, 2)


def average_rewards(p1: jax.Array, p2: jax.Array, params: ExactGameParams) -> jax.Array:
    """Average reward per step ``(1 - gamma) V`` ``(2,)``."""
    return (1.0 - params.gamma) * exact_values(p1, p2, params)


def cooperation_rates(p1: jax.Array, p2: jax.Array, gamma: jax.Array) -> jax.Array:
    """Discount-weighted share of rounds in which each player cooperates ``(2,)``.

    ``(1 - gamma) * sum_t gamma^t P(player i plays C at round t)``.
    """
    occ = (1.0 - gamma) * discounted_occupancy(p1, p2, gamma)
    # joint outcomes CC, CD, DC, DD: player 1 cooperates in 0,1; player 2 in 0,2
    return jnp.stack([occ[0] + occ[1], occ[0] + occ[2]])


def rewards_and_cooperation(
    p1: jax.Array, p2: jax.Array, params: ExactGameParams
) -> tuple[jax.Array, jax.Array]:
    """:func:`average_rewards` and :func:`cooperation_rates` from one solve."""
    occ = (1.0 - params.gamma) * discounted_occupancy(p1, p2, params.gamma)
    coop = jnp.stack([occ[0] + occ[1], occ[0] + occ[2]])
    return occ @ params.payoffs.reshape(4, 2), coop


def exact_values_from_logits(
    theta1: jax.Array, theta2: jax.Array, params: ExactGameParams
) -> jax.Array:
    """:func:`exact_values` of the policies ``sigmoid(theta)`` (5 logits each)."""
    return exact_values(jax.nn.sigmoid(theta1), jax.nn.sigmoid(theta2), params)
