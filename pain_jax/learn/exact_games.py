"""Differentiable two-player games with exact values, seen from one player's side.

A game here is a ``flax.struct`` pytree with

* ``dim`` (static): the number of parameters of each player;
* ``values(mine, theirs) -> (V_mine, V_theirs)`` ``(2,)``: exact values to *maximise*,
  from the point of view of the player whose parameters come first;
* ``swap()``: the same game seen by the other player, so that
  ``game.swap().values(theirs, mine) == game.values(mine, theirs)[::-1]``;
* ``report(theta1, theta2) -> dict`` of per-update metrics (player 1's view first).

Learners only ever call ``values`` and ``swap``, so one learner code path serves the
iterated matrix games (5 logits per player) and the tandem game of the SOS paper.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from pain_jax.envs import matrix_exact as mx


@struct.dataclass
class MatrixGame:
    """Iterated 2x2 game with memory-one policies ``sigmoid(theta)``, theta ``(5,)``.

    Attributes:
      params: payoffs ``(2, 2, 2)`` and ``gamma`` (traced).
      value_scale: traced factor on the values that learners climb.  ``1.0`` (the
        default) is the discounted value ``V = p0^T (I - gamma P)^-1 r`` that the
        original LOLA code differentiated; ``1 - gamma`` gives the per-step average,
        i.e. step sizes ``1 / (1 - gamma)`` times smaller.
    """

    params: mx.ExactGameParams
    value_scale: jax.Array = 1.0
    dim: int = struct.field(pytree_node=False, default=5)

    def values(self, mine: jax.Array, theirs: jax.Array) -> jax.Array:
        return self.value_scale * mx.exact_values_from_logits(mine, theirs, self.params)

    def swap(self) -> MatrixGame:
        return self.replace(params=mx.swap_players(self.params))

    def rewards(self, theta1: jax.Array, theta2: jax.Array) -> jax.Array:
        """Average reward per step ``(1 - gamma) V`` ``(2,)`` (what pain reacts to)."""
        return mx.average_rewards(
            jax.nn.sigmoid(theta1), jax.nn.sigmoid(theta2), self.params
        )

    def report(self, theta1: jax.Array, theta2: jax.Array) -> dict[str, jax.Array]:
        """``reward`` ``(2,)`` per step, ``probs`` ``(2, 5)`` P(C | state) in own view,
        ``coop`` ``(2,)`` discount-weighted share of rounds each player cooperates."""
        p1, p2 = jax.nn.sigmoid(theta1), jax.nn.sigmoid(theta2)
        reward, coop = mx.rewards_and_cooperation(p1, p2, self.params)
        return {"reward": reward, "probs": jnp.stack([p1, p2]), "coop": coop}


def matrix_game(name: str = "ipd", value_scale: float = 1.0, dtype=jnp.float32):
    """:class:`MatrixGame` with the payoffs and discount of a named game."""
    params = mx.exact_params(name, dtype=dtype)
    return MatrixGame(params=params, value_scale=jnp.asarray(value_scale, dtype))


@struct.dataclass
class TandemGame:
    """The tandem game of Letcher et al. (2019): losses ``L1 = (x+y)^2 - 2x`` and
    ``L2 = (x+y)^2 - 2y`` over scalars ``x``, ``y`` (stored as ``(1,)`` arrays).

    Its fixed points are the line ``x + y = 1``, stable under naive learning; LOLA
    (shaping step ``alpha``) settles at ``x + y = 1 / (1 - 2 alpha)`` instead, where
    both losses are higher, while SOS keeps ``x + y = 1``.
    """

    dim: int = struct.field(pytree_node=False, default=1)

    def values(self, mine: jax.Array, theirs: jax.Array) -> jax.Array:
        x, y = mine[0], theirs[0]
        s = (x + y) ** 2
        return -jnp.stack([s - 2.0 * x, s - 2.0 * y])

    def swap(self) -> TandemGame:
        return self  # symmetric: the same formula from either side

    def rewards(self, theta1: jax.Array, theta2: jax.Array) -> jax.Array:
        """``(-L1, -L2)`` ``(2,)``: the one-shot game's reward is minus its loss."""
        return self.values(theta1, theta2)

    def report(self, theta1: jax.Array, theta2: jax.Array) -> dict[str, jax.Array]:
        """``loss`` ``(2,)`` (L1, L2) and ``x_plus_y`` ``()``."""
        return {
            "loss": -self.values(theta1, theta2),
            "x_plus_y": theta1[0] + theta2[0],
        }


# ----- outcome definitions (used by the LOLA table, the tests and the notebook) -----

#: How "ended at tit-for-tat" is decided, word for word as printed with the table.
TFT_DEFINITION = (
    "a player ended at tit-for-tat when its final P(C | start), P(C | CC) and "
    "P(C | DC) are all > 0.5 and P(C | CD) and P(C | DD) are both < 0.5 (own view: "
    "it opens with C and then copies the other's last move)"
)
#: How "ended at the mixed Nash equilibrium" (matching pennies) is decided.
NASH_DEFINITION = (
    "a player ended at the mixed Nash when all 5 final P(C | state) are within 0.1 of 0.5"
)


def is_tit_for_tat(probs: jax.Array) -> jax.Array:
    """bool ``(...)`` from ``probs`` ``(..., 5)`` per :data:`TFT_DEFINITION`."""
    start, cc, cd, dc, dd = (probs[..., i] for i in range(5))
    return (start > 0.5) & (cc > 0.5) & (dc > 0.5) & (cd < 0.5) & (dd < 0.5)


def is_mixed_nash(probs: jax.Array, tol: float = 0.1) -> jax.Array:
    """bool ``(...)`` from ``probs`` ``(..., 5)`` per :data:`NASH_DEFINITION`."""
    return jnp.all(jnp.abs(probs - 0.5) < tol, axis=-1)
