"""Coin Game: N coloured agents on a wrapping grid pick up coloured coins.

Rules (``docs/references.md``; Lerer & Peysakhovich 2017, Foerster et al. 2018):
agent ``i`` owns colour ``i``.  Stepping onto a coin picks it up: the picker gets
``own_coin_reward`` for a coin of its own colour and ``other_coin_reward`` for a coin
of another colour, in which case the coin's owner gets ``owner_penalty``.

Simultaneous arrival (symmetric in the agents, no agent order involved): *every*
agent standing on a coin's cell after the move picks it up and is paid as if it were
alone; the owner is charged ``owner_penalty`` once per picker of another colour.  So
when agents 0 and 1 both step onto agent 0's coin (defaults +1, +1, -2): agent 0
gets +1 - 2 = -1 and agent 1 gets +1; mirrored positions give mirrored rewards.

Coin variants (traced params, so one ``vmap`` can compare them):

* ``coin_per_agent=False`` (the original): exactly one coin is on the board.  When it
  is picked up, a new one appears whose colour is uniformly random among the
  ``num_agents`` colours, or the next colour ``(c + 1) % num_agents`` when
  ``alternate_colour`` is true.  The first coin's colour is uniformly random.
* ``coin_per_agent=True`` (later JAX suites): one coin per colour is always present;
  a picked coin respawns at once.

Spawning: a coin appears on a cell drawn uniformly among the cells holding neither an
agent nor another coin (the ``u``-th free cell in row-major order, found by a short
fixed-point iteration over the occupied cells: no permutation tables, cost independent
of the grid size).  Agents start on independent uniform cells and may share one.
``u`` comes from one 32-bit random word without division (bias below
``cells / 2**32``).
Static config that cannot hold every object is rejected, and so are params asking for
one coin per agent on a grid too small for ``2 * num_agents`` objects.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pain_jax.envs.api import Environment, EnvParams, _check_concrete, random_words
from pain_jax.envs.spaces import Box, Discrete

# Actions, in order: right, left, up, down, stay.  Row 0 is the top row, so "up"
# decreases the row index; every move wraps around the grid.
RIGHT, LEFT, UP, DOWN, STAY = range(5)
ACTION_NAMES = ("right", "left", "up", "down", "stay")


@struct.dataclass
class CoinGameParams(EnvParams):
    """Traced Coin Game parameters (sweepable with ``vmap``).

    Attributes:
      max_steps: int32 ``()``, episode length (truncation), default 50.
      own_coin_reward: float32 ``()``, picker's reward for a coin of its own colour.
      other_coin_reward: float32 ``()``, picker's reward for another colour's coin.
      owner_penalty: float32 ``()``, added to the owner's reward per other-coloured
        picker of its coin.
      coin_per_agent: bool ``()``, one coin per colour always present (else one coin
        at a time).
      alternate_colour: bool ``()``, one-coin variant only: the next coin takes the
        next colour instead of a uniformly random one.
    """

    max_steps: int = 50
    own_coin_reward: float = 1.0
    other_coin_reward: float = 1.0
    owner_penalty: float = -2.0
    coin_per_agent: bool = False
    alternate_colour: bool = False


@struct.dataclass
class CoinGameState:
    """Coin Game state (A = ``num_agents``; coin ``j`` has colour ``j``)."""

    agent_pos: jax.Array  # int32 (A, 2): (row, col) of each agent
    coin_pos: jax.Array  # int32 (A, 2): (row, col) of coin j; stale when absent
    coin_present: jax.Array  # bool (A,): coin j is on the board
    time: jax.Array  # int32 (): steps taken in this episode
    episode_return: jax.Array  # float32 (A,): summed rewards this episode
    pickups: jax.Array  # int32 (A,): coins agent i picked up this episode
    own_pickups: jax.Array  # int32 (A,): ... of which had agent i's colour
    coins_lost: jax.Array  # int32 (A,): pickups of agent i's coin by others


class CoinGame(Environment):
    """The Coin Game on a ``grid_size`` x ``grid_size`` torus with ``num_agents``.

    - **observation**: float32 ``(A, G, G, 2A)`` (``flat=False``) or
      ``(A, G * G * 2A)`` (``flat=True``), values in {0, 1}.  Egocentric channels
      for observer ``i``: channel 0 is ``i`` itself, channel ``k`` (1..A-1) is agent
      ``(i + k) % A``, channel ``A`` is ``i``'s own coin, channel ``A + k`` is the coin
      of agent ``(i + k) % A``.  With ``centred=True`` the grid is rolled so that the
      observer sits at cell ``(G // 2, G // 2)``; else rows/cols are absolute.
    - **action**: int32 ``(A,)`` in ``[0, 5)``: right, left, up, down, stay (row 0
      is the top row).  Out-of-range actions are clipped (``checked=True`` raises).
    - **reward**: float32 ``(A,)``, see the module docstring (pickup, penalty and
      simultaneous-arrival rules).  Rewards on the last step are paid in full.
    - **termination**: never; episodes are truncated after ``params.max_steps``
      steps (default 50) and ``step`` resets by itself.
    - **episode statistics** (``info["episode"]``, read before the reset):
      ``return`` float32 (A,), ``length`` int32 (), ``pickups``, ``own_pickups``,
      ``other_pickups``, ``coins_lost`` int32 (A,), ``own_coin_rate`` float32 ()
      (own-colour pickups / all pickups; NaN when nothing was picked up).
    """

    def __init__(
        self,
        grid_size: int = 3,
        num_agents: int = 2,
        centred: bool = False,
        flat: bool = False,
        checked: bool = False,
    ):
        if int(num_agents) != num_agents or num_agents < 1:
            raise ValueError(f"num_agents must be an integer >= 1, got {num_agents}")
        if int(grid_size) != grid_size or not 1 <= grid_size <= 255:
            # 255: spawn draws are exact in 32-bit arithmetic for < 2**16 cells
            raise ValueError(f"grid_size must be an integer in [1, 255], got {grid_size}")
        if grid_size * grid_size < num_agents + 1:
            raise ValueError(
                f"grid {grid_size}x{grid_size} has {grid_size**2} cells, too few for "
                f"{num_agents} agents and a coin (need >= {num_agents + 1})"
            )
        self.grid_size = int(grid_size)
        self.num_agents = int(num_agents)
        self.centred = bool(centred)
        self.flat = bool(flat)
        self.checked = bool(checked)

    # ----- configuration --------------------------------------------------------
    def default_params(self) -> CoinGameParams:
        return CoinGameParams()

    def validate_params(self, params) -> None:
        super().validate_params(params)
        cells, a = self.grid_size**2, self.num_agents
        for name in ("own_coin_reward", "other_coin_reward", "owner_penalty"):
            _check_concrete(getattr(params, name), np.isfinite, f"{name} must be finite")
        _check_concrete(
            params.coin_per_agent,
            lambda v: ~v.astype(bool) | (cells >= 2 * a),
            f"coin_per_agent needs {2 * a} free cells for {a} agents and {a} coins, "
            f"the {self.grid_size}x{self.grid_size} grid has {cells}",
        )

    @property
    def num_actions(self) -> int:
        return 5

    @property
    def obs_shape(self) -> tuple[int, ...]:
        g, c = self.grid_size, 2 * self.num_agents
        return (g * g * c,) if self.flat else (g, g, c)

    def action_space(self, params=None) -> Discrete:
        return Discrete(5)

    def observation_space(self, params=None) -> Box:
        return Box(0.0, 1.0, self.obs_shape, jnp.float32)

    # ----- dynamics -------------------------------------------------------------
    # Under vmap every per-env scalar becomes a (batch,) vector, which XLA on CPU
    # vectorises well; small minor axes (agents, coordinates) do not.  So the
    # dynamics work on Python lists of per-agent scalars (the agent count is static)
    # and only the state fields are stacked.
    def reset_env(self, key, params):
        a, g, cells = self.num_agents, self.grid_size, self.grid_size**2
        draws = _Draws(key, 2 * a + 1)
        agent_cell = [draws.below(cells) for _ in range(a)]
        first = draws.below(a)
        present = [params.coin_per_agent | (first == j) for j in range(a)]
        off = jnp.full((), cells, jnp.int32)  # nothing placed yet: off-grid cells
        coin_cell = _stored(self._spawn(agent_cell, [off] * a, present, draws))
        coin_cell = [jnp.where(p, c, 0) for p, c in zip(present, coin_cell, strict=True)]
        zeros = jnp.zeros((a,), jnp.int32)
        state = CoinGameState(
            agent_pos=_to_pos(agent_cell, g),
            coin_pos=_to_pos(coin_cell, g),
            coin_present=jnp.stack(present),
            time=jnp.zeros((), jnp.int32),
            episode_return=jnp.zeros((a,), jnp.float32),
            pickups=zeros,
            own_pickups=zeros,
            coins_lost=zeros,
        )
        return self.get_obs(state), state

    def step_env(self, key, state: CoinGameState, actions, params):
        a, g, cells = self.num_agents, self.grid_size, self.grid_size**2
        draws = _Draws(key, a + 1)
        random_colour = draws.below(a)
        rows, cols = [], []
        for i in range(a):  # moves by arithmetic on the action id (no table gather)
            act = actions[i]
            d_row = (act == DOWN).astype(jnp.int32) - (act == UP).astype(jnp.int32)
            d_col = (act == RIGHT).astype(jnp.int32) - (act == LEFT).astype(jnp.int32)
            rows.append(_wrap(state.agent_pos[i, 0] + d_row, g))
            cols.append(_wrap(state.agent_pos[i, 1] + d_col, g))
        agent_cell = [r * g + c for r, c in zip(rows, cols, strict=True)]
        coin_cell = [state.coin_pos[j, 0] * g + state.coin_pos[j, 1] for j in range(a)]
        was_present = [state.coin_present[j] for j in range(a)]

        # hit[i][j]: agent i stands on present coin j after the move.
        hit = [
            [
                ((agent_cell[i] == coin_cell[j]) & was_present[j]).astype(jnp.int32)
                for j in range(a)
            ]
            for i in range(a)
        ]
        own = [hit[i][i] for i in range(a)]
        picked_by = [sum(hit[i]) for i in range(a)]  # coins agent i picked up
        # other-coloured pickers of agent i's coin (each costs i the penalty)
        taken = [sum(hit[k][i] for k in range(a)) - own[i] for i in range(a)]
        picked = [sum(hit[k][j] for k in range(a)) > 0 for j in range(a)]
        any_picked = sum(picked_by) > 0
        # One-coin variant: the colour of the coin on the board, then the next one.
        old_colour = sum(j * was_present[j].astype(jnp.int32) for j in range(1, a))
        next_colour = jnp.where(
            params.alternate_colour,
            jnp.where(old_colour == a - 1, 0, old_colour + 1),
            random_colour,
        )
        per_agent = params.coin_per_agent
        present, respawn = [], []
        for j in range(a):
            new_one = any_picked & (next_colour == j)
            present.append(per_agent | jnp.where(any_picked, new_one, was_present[j]))
            respawn.append(jnp.where(per_agent, picked[j], new_one))
        # Coins that stay block their cells; the others are lifted off the board.
        staying = [
            jnp.where(p & ~r, c, cells)
            for p, r, c in zip(present, respawn, coin_cell, strict=True)
        ]
        coin_cell = self._spawn(agent_cell, staying, respawn, draws)
        rewards = jnp.stack(
            [
                params.own_coin_reward * own[i]
                + params.other_coin_reward * (picked_by[i] - own[i])
                + params.owner_penalty * taken[i]
                for i in range(a)
            ]
        ).astype(jnp.float32)
        # A coin that is gone keeps its last cell (masked by coin_present).
        new_state = CoinGameState(
            agent_pos=jnp.stack([jnp.stack(rows), jnp.stack(cols)], -1),
            coin_pos=jnp.where(
                jnp.stack(present)[:, None], _to_pos(coin_cell, g), state.coin_pos
            ),
            coin_present=jnp.stack(present),
            time=state.time + 1,
            episode_return=state.episode_return + rewards,
            pickups=state.pickups + jnp.stack(picked_by),
            own_pickups=state.own_pickups + jnp.stack(own),
            coins_lost=state.coins_lost + jnp.stack(taken),
        )
        return self.get_obs(new_state), new_state, rewards, jnp.zeros((), bool)

    def _spawn(self, agent_cell, coin_cell, todo, draws):
        """Place coin ``j`` on a uniform free cell wherever ``todo[j]``, in order.

        ``coin_cell[j]``: the cell of a coin on the board, or the off-grid value
        ``cells`` for one that is not (it blocks nothing).  Returns the list of coin
        cells with the placed coins on their new cells.
        """
        cells = self.grid_size**2
        coin_cell = list(coin_cell)
        for j in range(self.num_agents):
            others = coin_cell[:j] + coin_cell[j + 1 :]
            cell = _free_cell(agent_cell + others, draws, cells)
            coin_cell[j] = jnp.where(todo[j], cell, coin_cell[j])
        return coin_cell

    # ----- observation and statistics -------------------------------------------
    def get_obs(self, state: CoinGameState) -> jax.Array:
        """Egocentric observations, float32 ``(A, *obs_shape)`` (see the class doc)."""
        a, g = self.num_agents, self.grid_size
        pos = [state.agent_pos[i] for i in range(a)]
        pos += [state.coin_pos[j] for j in range(a)]
        on = [True] * a + [state.coin_present[j] for j in range(a)]
        views = []
        for i in range(a):
            # Observer i's channel order: itself, the other agents in cyclic order,
            # its coin, the other coins in the same order.
            order = [(i + k) % a for k in range(a)] + [a + (i + k) % a for k in range(a)]
            chans = []
            for o in order:
                row, col = pos[o][0], pos[o][1]
                if self.centred:
                    row = _wrap(row - pos[i][0] + g // 2, g)
                    col = _wrap(col - pos[i][1] + g // 2, g)
                chans.append(jnp.where(on[o], row * g + col, -1))  # -1: not shown
            views.append(jnp.stack(chans))
        # Channel -> cell table, materialised (A, 2A); the observation is then one
        # broadcast comparison, the cheapest form XLA vectorises.  It compares
        # float32 (cells < 2**16 are exact): on CPU the int32 compare-and-convert
        # measured about 2x slower in the batched step (10x alone) than the float one.
        cell = _stored(jnp.stack(views)).astype(jnp.float32)
        grid = jnp.arange(g * g, dtype=jnp.float32)
        obs = (grid[None, :, None] == cell[:, None, :]).astype(jnp.float32)
        return obs.reshape((a, -1)) if self.flat else obs.reshape((a, g, g, 2 * a))

    def episode_stats(self, state: CoinGameState) -> dict[str, jax.Array]:
        total = state.pickups.sum()
        own = state.own_pickups.sum()
        rate = jnp.where(total > 0, own / jnp.maximum(total, 1), jnp.nan)
        return {
            "return": state.episode_return,
            "length": state.time,
            "pickups": state.pickups,
            "own_pickups": state.own_pickups,
            "other_pickups": state.pickups - state.own_pickups,
            "coins_lost": state.coins_lost,
            "own_coin_rate": rate.astype(jnp.float32),
        }


def _stored(tree):
    """``tree`` of int32/bool arrays, each computed once and stored.

    XLA on CPU drops optimisation barriers before fusing, and fuses cheap producers
    into every consumer, recomputing them per consumer element (the observation's
    cell table once per grid cell, the spawn chain once per coordinate, ...).
    Division counts as expensive, so XLA does not duplicate it: dividing by a 1 that
    it cannot fold away makes each leaf a stored buffer.
    """

    def store(x):
        x = jnp.asarray(x)
        as_int = x.astype(jnp.int32)
        v = as_int | 1  # never 0, so v / v == 1
        out = jax.lax.div(as_int, jax.lax.div(v, v))
        return out.astype(x.dtype) if x.dtype == jnp.bool_ else out

    return jax.tree.map(store, tree)


def _wrap(x: jax.Array, g: int) -> jax.Array:
    """``x mod g`` for ``x`` in ``[-g, 2g)`` with two selects (cheaper than ``%``)."""
    x = jnp.where(x < 0, x + g, x)
    return jnp.where(x >= g, x - g, x)


def _to_pos(cells: list, g: int) -> jax.Array:
    """int32 ``(len(cells), 2)`` (row, col) from a list of int32 cell indices."""
    cell = jnp.stack(cells)
    row = cell // g
    return jnp.stack([row, cell - row * g], -1)


class _Draws:
    """``count`` uniform integers from one key: each ``below(n)`` takes the next of
    ``count`` random words drawn in a single hash call.  (Packing several draws
    into one word measured slower: the draws then form a serial chain.)"""

    def __init__(self, key: jax.Array, count: int):
        self.words, self.index = random_words(key, count), -1

    def below(self, n) -> jax.Array:
        """int32 uniform in ``[0, n)`` (``n`` may be traced, ``1 <= n < 2**16``)."""
        self.index += 1
        return _below(self.words[self.index], n)


def _below(word: jax.Array, n) -> jax.Array:
    """``floor(word * n / 2**32)``: uniform in ``[0, n)`` for a uniform uint32 word
    (bias below ``n / 2**32``), exact in 32-bit arithmetic for ``n < 2**16``, and
    free of integer division (which CPUs do not vectorise)."""
    n = jnp.asarray(n, jnp.uint32)
    hi, lo = word >> 16, word & jnp.uint32(0xFFFF)
    return ((hi * n + ((lo * n) >> 16)) >> 16).astype(jnp.int32)


def _free_cell(occupied: list, draws: _Draws, cells: int) -> jax.Array:
    """A uniform cell index in ``[0, cells)`` not in ``occupied``.

    ``occupied``: list of int32 cells; repeats are allowed and the off-grid value
    ``cells`` is ignored.  The answer is the ``u``-th free cell (row-major): the
    least fixed point of ``c = u + #{distinct occupied <= c}``, reached from
    ``c = u`` in at most ``len(occupied)`` monotone steps.
    """
    distinct = []
    for m, cell in enumerate(occupied):
        new = cell < cells
        for prev in occupied[:m]:
            new = new & (prev != cell)
        distinct.append(new)
    u = draws.below(cells - sum(d.astype(jnp.int32) for d in distinct))
    c = u
    for _ in occupied:
        c = u + sum(
            (d & (cell <= c)).astype(jnp.int32)
            for d, cell in zip(distinct, occupied, strict=True)
        )
    return c
