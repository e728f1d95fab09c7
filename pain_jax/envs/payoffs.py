"""Payoff tables of the two-player matrix games and memory-one fixed strategies.

Conventions shared by the sampled games (``pain_jax.envs.matrix``) and the exact,
analytic games (``pain_jax.envs.matrix_exact``):

* actions: 0 = cooperate (C), 1 = defect (D);
* a payoff table has shape ``(2, 2, 2)`` float32: ``table[a1, a2] = (r1, r2)``;
* memory-one states from each player's *own* view: 0 = START, 1 = CC, 2 = CD,
  3 = DC, 4 = DD, own action first (``state = 1 + 2 * own + other``), so the other
  player's CD is my DC;
* a memory-one policy is 5 numbers, ``P(cooperate | state)`` (or their logits).
"""

from __future__ import annotations

import numpy as np

START, CC, CD, DC, DD = range(5)
STATE_NAMES = ("start", "CC", "CD", "DC", "DD")


def _table(cc, cd, dc, dd) -> np.ndarray:
    return np.array([[cc, cd], [dc, dd]], dtype=np.float32)


#: name -> (payoff table, default discount) from ``docs/references.md``.
PAYOFFS: dict[str, tuple[np.ndarray, float]] = {
    # prisoner's dilemma: CC (-1,-1), CD (-3,0), DC (0,-3), DD (-2,-2)
    "ipd": (_table((-1, -1), (-3, 0), (0, -3), (-2, -2)), 0.96),
    # matching pennies: +1 for player 1 on a match, -1 on a mismatch (zero-sum)
    "imp": (_table((1, -1), (-1, 1), (-1, 1), (1, -1)), 0.9),
    # chicken: swerving (C) vs going straight (D); crashing is catastrophic
    "chicken": (_table((0, 0), (-1, 1), (1, -1), (-100, -100)), 0.96),
    # stag hunt (our documented default): hunting the stag together (4) beats the
    # safe hare (3 alone, 2 when both go for it); a lone stag hunter gets 0.
    # C = stag, D = hare.
    "stag_hunt": (_table((4, 4), (0, 3), (3, 0), (2, 2)), 0.96),
}


def payoff_table(name: str) -> np.ndarray:
    if name not in PAYOFFS:
        raise KeyError(f"unknown matrix game {name!r}; known: {', '.join(PAYOFFS)}")
    return PAYOFFS[name][0]


def memory_one_state(own: np.ndarray, other: np.ndarray) -> np.ndarray:
    """State index (1..4) from my action and the other player's action."""
    return 1 + 2 * own + other


#: Fixed memory-one strategies as ``P(cooperate | start, CC, CD, DC, DD)``.
#: Grim trigger is exactly memory-one: its own defection only ever follows a
#: defection of the other player, so "I defected last round" means "triggered".
STRATEGIES: dict[str, np.ndarray] = {
    "always_cooperate": np.array([1, 1, 1, 1, 1], np.float32),
    "always_defect": np.array([0, 0, 0, 0, 0], np.float32),
    "tit_for_tat": np.array([1, 1, 0, 1, 0], np.float32),
    "grim_trigger": np.array([1, 1, 0, 0, 0], np.float32),
    "random": np.array([0.5, 0.5, 0.5, 0.5, 0.5], np.float32),
}


def strategy(name: str) -> np.ndarray:
    """``P(cooperate | state)`` float32 ``(5,)`` of a fixed strategy."""
    if name not in STRATEGIES:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
