"""Fixed Coin Game bots: pure, jittable policies read off the egocentric observation.

Every bot is a function ``bot(key, obs, num_agents=2) -> action`` (int32 ``()``) of one
agent's Coin Game observation, so it works for any caller that has observations (a
rollout, a league, a test), with or without pain features appended:

* ``obs`` float ``(G, G, C)`` (``flat=False``) or ``(G * G * C,)`` plus optional extra
  features (``flat=True``; the grid size is then inferred from the length); channels
  as in :class:`~pain_jax.envs.coin_game.CoinGame`: 0 is the bot itself, ``1..A-1``
  the other agents, ``A`` its own coin, ``A+1..2A-1`` the other agents' coins.  Only
  the first ``2A`` channels are read, so pain channels appended by the
  :class:`~pain_jax.pain.PainWrapper` are ignored.  Absolute or centred grids both
  work: only positions relative to the bot matter.
* actions are the Coin Game's: right, left, up, down, stay (row 0 is the top row);
  every move wraps around the torus.

The bots (:data:`BOTS`, in this order):

* ``always_cooperate``: walks a shortest path to its *own* coin and never steps on
  another agent's coin.  Its move is the first of (right, left, up, down) that
  shortens the torus (Manhattan, wrapping) distance to its coin without landing on
  another agent's coin.  When no such move exists (its coin is not on the board, or
  every shortening move would take another agent's coin) it draws a uniform action
  among those that do not land on another agent's coin (stay is always among them:
  a coin never lies under an agent).  So it never takes another agent's coin.
* ``always_defect``: goes for the other agents' coins first: the nearest other-coloured
  coin on the board (ties: lowest channel), its own coin only when no other-coloured
  coin is on the board.
* ``random``: a uniform action.
* ``greedy``: goes for the nearest coin of any colour (ties: its own coin first,
  then lowest channel).

``always_defect`` and ``greedy`` differ only when several coins are on the board
(``coin_per_agent=True``); in the original one-coin game both go for the one coin.

"Goes for" a target: the first of (right, left, up, down) that shortens the torus
distance to it; it stays when no coin is on the board.  Tie-breaking is by this fixed
action order, so the deterministic bots are deterministic functions of the
observation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pain_jax.envs.coin_game import STAY

#: (d_row, d_col) of each action, in action order.
_MOVES = np.array([[0, 1], [0, -1], [-1, 0], [1, 0], [0, 0]], np.int32)
_BIG = 10_000  # distance of an absent target


def grid_view(obs: jax.Array, num_agents: int) -> jax.Array:
    """The ``2A`` object channels of one observation, float32 ``(G, G, 2A)``."""
    c = 2 * num_agents
    if obs.ndim == 1:  # flat: G*G*c grid values, then any extra (pain) features
        g = int(round((obs.shape[0] // c) ** 0.5))
        while g * g * c > obs.shape[0]:
            g -= 1
        return obs[: g * g * c].reshape(g, g, c)
    return obs[..., :c]


def positions(obs: jax.Array, num_agents: int) -> tuple[jax.Array, jax.Array]:
    """``(pos, present)``: int32 ``(2A, 2)`` (row, col) and bool ``(2A,)`` of every
    object channel (an absent coin's position is meaningless)."""
    grid = grid_view(obs, num_agents)
    g = grid.shape[0]
    flat = grid.reshape(g * g, -1)  # (cells, 2A)
    cell = jnp.argmax(flat, axis=0).astype(jnp.int32)
    return jnp.stack([cell // g, cell % g], -1), flat.max(axis=0) > 0.5


def torus_distance(a: jax.Array, b: jax.Array, g: int) -> jax.Array:
    """Manhattan distance on a ``g`` x ``g`` torus, int32; positions ``(..., 2)``
    broadcast."""
    d = jnp.abs(a - b) % g
    return jnp.minimum(d, g - d).sum(-1)


def _next_cells(me: jax.Array, g: int) -> jax.Array:
    """int32 ``(5, 2)``: the cell each action leads to (wrapping)."""
    return (me[None, :] + _MOVES) % g


def _toward(me, target, present, g, allowed=None) -> tuple[jax.Array, jax.Array]:
    """``(action, found)``: the first move that shortens the distance to ``target``
    (among ``allowed`` moves), ``found`` false (and action ``STAY``) when none does
    or the target is absent."""
    nxt = _next_cells(me, g)
    now = torus_distance(me, target, g)
    better = (torus_distance(nxt, target[None], g) < now) & present
    if allowed is not None:
        better = better & allowed
    found = better.any()
    return jnp.where(found, jnp.argmax(better), STAY).astype(jnp.int32), found


def _nearest(me, coins, present, g) -> tuple[jax.Array, jax.Array]:
    """``(position, any_present)`` of the nearest present coin of ``coins`` ``(K, 2)``
    (ties: lowest index)."""
    dist = jnp.where(present, torus_distance(coins, me[None], g), _BIG)
    k = jnp.argmin(dist)
    return coins[k], present.any()


def always_cooperate(key: jax.Array, obs: jax.Array, num_agents: int = 2) -> jax.Array:
    """Own coin only, never another's coin (see the module docstring)."""
    pos, present = positions(obs, num_agents)
    g = grid_view(obs, num_agents).shape[0]
    me, own = pos[0], pos[num_agents]
    others, others_on = pos[num_agents + 1 :], present[num_agents + 1 :]
    nxt = _next_cells(me, g)  # (5, 2)
    hits = (nxt[:, None, :] == others[None]).all(-1) & others_on[None]  # (5, A-1)
    allowed = ~hits.any(-1)
    action, found = _toward(me, own, present[num_agents], g, allowed)
    # Blocked or nothing to fetch: a uniform action among the allowed ones.
    logits = jnp.where(allowed, 0.0, -jnp.inf)
    wander = jax.random.categorical(key, logits).astype(jnp.int32)
    return jnp.where(found, action, wander)


def always_defect(key: jax.Array, obs: jax.Array, num_agents: int = 2) -> jax.Array:
    """The nearest other-coloured coin first, else its own (module docstring)."""
    pos, present = positions(obs, num_agents)
    g = grid_view(obs, num_agents).shape[0]
    me = pos[0]
    other, other_on = _nearest(me, pos[num_agents + 1 :], present[num_agents + 1 :], g)
    target = jnp.where(other_on, other, pos[num_agents])
    on = other_on | present[num_agents]
    return _toward(me, target, on, g)[0]


def random_bot(key: jax.Array, obs: jax.Array, num_agents: int = 2) -> jax.Array:
    """A uniform action in ``[0, 5)``."""
    return jax.random.randint(key, (), 0, 5, jnp.int32)


def greedy(key: jax.Array, obs: jax.Array, num_agents: int = 2) -> jax.Array:
    """The nearest coin of any colour, own coin first on ties (module docstring)."""
    pos, present = positions(obs, num_agents)
    g = grid_view(obs, num_agents).shape[0]
    me = pos[0]
    target, on = _nearest(me, pos[num_agents:], present[num_agents:], g)
    return _toward(me, target, on, g)[0]


#: name -> bot, in a fixed order (a bot's index is its position here).
BOTS = {
    "always_cooperate": always_cooperate,
    "always_defect": always_defect,
    "random": random_bot,
    "greedy": greedy,
}


def bot_by_index(index: jax.Array, key: jax.Array, obs: jax.Array, num_agents: int = 2):
    """The action of bot number ``index`` (traced int32, order of :data:`BOTS`), so
    one compiled function serves every bot."""
    branches = [lambda k, o, f=f: f(k, o, num_agents) for f in BOTS.values()]
    return jax.lax.switch(index, branches, key, obs)


__all__ = [
    "BOTS",
    "always_cooperate",
    "always_defect",
    "bot_by_index",
    "greedy",
    "positions",
    "random_bot",
    "torus_distance",
]
