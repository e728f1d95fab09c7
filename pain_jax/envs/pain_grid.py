"""Pain Grid: an N-agent, partially observed gridworld for hurting, helping and ToM.

``num_agents`` agents (2..12) live on an ``height`` x ``width`` grid (5..32 each)
surrounded by a wall (everything outside the grid is wall), with optional static
interior ``walls``.  ``num_resources`` resource slots and ``num_hazards`` hazard slots
(fixed counts, like Coin Game's coins) are on the board or absent.

Actions (int32, ``Discrete(8)``), all agents move at once:

0. ``stay``  1. ``up``  2. ``right``  3. ``down``  4. ``left``: a move sets the agent's
   heading (0 up, 1 right, 2 down, 3 left) to its direction, even when the move is
   blocked; other actions keep the heading.
5. ``push``: if a present hazard is on the cell ahead (heading), it moves one cell
   further in the heading direction, provided the destination is inside the grid,
   no wall, holds no hazard (before this step) and no resource (after this step's
   collections); agents there do not
   block it (the hazard lands on them).  A hazard pushed by two or more agents at
   once, or two hazards pushed onto the same cell, do not move.
6. ``clear``: removes a present hazard on the cell ahead (several clearers may remove
   the same one).  Every ``clear`` pays ``clear_cost``, whether or not it removes one.
7. ``attack``: every *other* agent orthogonally adjacent to the attacker (after the
   moves) gets ``attack_damage``, once per attacker; every attack pays
   ``attack_cost``.

Order within a step: moves, then resource collection, attacks, clears and pushes
(all read the post-move positions and pre-step hazards), then hazard damage, then
respawns.

Moves (symmetric in agent indices): a move into a wall is blocked.  When two or more
agents' target cells coincide (a non-moving agent's target is its own cell) none of
them moves; two agents trying to swap cells are both blocked; then "blocked"
propagates by fixed-point iteration: an agent moving into the cell of an agent that
stays is blocked.  Chains (follow the leader) and rotations of three or more agents
move.  So agents never overlap, never enter walls, and are never lost or duplicated.
Agents may stand on hazards (and get hurt); stepping onto a present resource
collects it (``resource_reward``).

Hazards: an agent on or orthogonally next to a present hazard gets
``hazard_damage`` per such hazard per step.  Respawns: after the step every absent
resource slot reappears with probability ``regrow_prob``, and every absent hazard
slot (cleared ones, the same step included) with ``hazard_respawn_prob`` (0: never),
on a uniform free cell (no wall, agent, hazard or resource); slots are filled in
order, each draw from its own random word.  The free cell is the ``u``-th free cell
in row-major order, found by a fixed-point iteration over the occupied cells (no
permutation tables).  Reset puts agents, resources and hazards on distinct uniform
free cells (every draw its own word) with uniform random headings.

Rewards: ``own_i`` is the sum of the terms above; agent ``i`` receives
``(1 - shared_reward) * own_i + shared_reward * mean_j own_j``.

Event record (last step; "damage" is a negated reward term, positive by default):

* ``harm[i, j]``: attack damage ``i`` did to ``j``, plus, for each hazard ``i``
  pushed this step, the hazard damage ``j`` takes from it now but would not have
  taken had it stayed (it was pushed next to ``j``; one pushed onto a ``j`` it was
  already next to leaves ``j``'s damage unchanged, so that is no harm).
  ``i == j`` counts.
* ``help[i, j]``: 1 where ``i`` cleared a hazard, or pushed it out of range, that
  was on or next to ``j`` (``j``'s post-move cell) before the removal and is not
  any more; else 0.  ``i == j`` counts.
* ``hazard_hurt[j]``: hazard damage ``j`` took this step.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pain_jax.envs.api import Environment, EnvParams, _check_concrete, random_words
from pain_jax.envs.coin_game import _below, _stored
from pain_jax.envs.spaces import Box, Discrete

STAY, UP, RIGHT, DOWN, LEFT, PUSH, CLEAR, ATTACK = range(8)
ACTION_NAMES = ("stay", "up", "right", "down", "left", "push", "clear", "attack")
#: observation channels, in order
CHANNELS = ("wall", "resource", "hazard", "self", "other", "facing")


@struct.dataclass
class PainGridParams(EnvParams):
    """Traced Pain Grid parameters (sweepable with ``vmap``); rewards are signed and
    added as they are.

    Attributes:
      max_steps: int32 ``()``, episode length (truncation), default 100.
      resource_reward: float32 ``()``, for collecting a resource.
      hazard_damage: float32 ``()``, per hazard on or next to the agent, per step.
      attack_damage: float32 ``()``, to the victim, per attacker.
      attack_cost: float32 ``()``, to the attacker, per attack.
      clear_cost: float32 ``()``, to the agent, per ``clear`` action.
      regrow_prob: float32 ``()`` in [0, 1], per absent resource slot per step.
      hazard_respawn_prob: float32 ``()`` in [0, 1], per absent hazard slot per step.
      shared_reward: float32 ``()`` in [0, 1], weight of the mean reward.
    """

    max_steps: int = 100
    resource_reward: float = 1.0
    hazard_damage: float = -0.5
    attack_damage: float = -1.0
    attack_cost: float = -0.1
    clear_cost: float = -0.1
    regrow_prob: float = 0.1
    hazard_respawn_prob: float = 0.05
    shared_reward: float = 0.0


@struct.dataclass
class PainGridState:
    """Pain Grid state (A agents, R resource slots, K hazard slots)."""

    agent_pos: jax.Array  # int32 (A, 2): (row, col), row 0 at the top
    heading: jax.Array  # int32 (A,): 0 up, 1 right, 2 down, 3 left
    resource_pos: jax.Array  # int32 (R, 2): stale when absent
    resource_present: jax.Array  # bool (R,)
    hazard_pos: jax.Array  # int32 (K, 2): stale when absent
    hazard_present: jax.Array  # bool (K,)
    time: jax.Array  # int32 (): steps taken in this episode
    harm: jax.Array  # float32 (A, A): damage i did to j in the last step
    help: jax.Array  # float32 (A, A): 1 where i removed a hazard hurting j
    hazard_hurt: jax.Array  # float32 (A,): hazard damage taken in the last step
    episode_return: jax.Array  # float32 (A,)
    harm_total: jax.Array  # float32 (A, A): summed harm this episode
    help_total: jax.Array  # float32 (A, A): summed help this episode
    resources_collected: jax.Array  # int32 (A,)
    hazard_damage_total: jax.Array  # float32 (A,)
    attacks: jax.Array  # int32 (A,): attack actions this episode


def _delta(heading):
    """(d_row, d_col) int32 of a heading (arithmetic, no table)."""
    i32 = jnp.int32
    return (
        (heading == 2).astype(i32) - (heading == 0).astype(i32),
        (heading == 1).astype(i32) - (heading == 3).astype(i32),
    )


def _near(r1, c1, r2, c2):
    """On the same or an orthogonally adjacent cell."""
    return jnp.abs(r1 - r2) + jnp.abs(c1 - c2) <= 1


def _uniform(word):
    """float32 in [0, 1) from a uint32 word (24 bits)."""
    return (word >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)


class PainGrid(Environment):
    """Pain Grid (rules in the module docstring).

    - **observation**: float32 ``(A, V, V, 6)``, ``V = 2 * view_radius + 1``, values
      in {0, 1}: agent ``i``'s egocentric window centred on itself (cell ``(r, r)``),
      rotated so that its heading points up when ``rotate_view``; channels
      ``CHANNELS``: wall (outside the grid is wall), resource, hazard, self, other
      agents, facing (the cell ahead of every agent, itself included).
    - **action**: int32 ``(A,)`` in ``[0, 8)``, ``ACTION_NAMES``.  Out-of-range
      actions are clipped (``checked=True`` raises).
    - **reward**: float32 ``(A,)``, see the module docstring.
    - **termination**: never; truncated after ``params.max_steps`` steps.
    - **episode statistics**: ``return`` float32 (A,), ``length`` int32 (),
      ``harm_done`` float32 (A,) (to others), ``harm_matrix`` float32 (A, A),
      ``help_given`` float32 (A,) (to others), ``help_matrix`` float32 (A, A),
      ``resources`` int32 (A,), ``hazard_damage`` float32 (A,), ``attacks`` int32 (A,).
    """

    def __init__(
        self,
        num_agents: int = 2,
        size: int = 8,
        height: int | None = None,
        width: int | None = None,
        view_radius: int = 2,
        num_resources: int = 3,
        num_hazards: int = 2,
        rotate_view: bool = False,
        walls=(),
        checked: bool = False,
    ):
        h = size if height is None else height
        w = size if width is None else width
        for name, v, lo, hi in (
            ("num_agents", num_agents, 2, 12),
            ("height", h, 5, 32),
            ("width", w, 5, 32),
            ("view_radius", view_radius, 1, 32),
            ("num_resources", num_resources, 0, 64),
            ("num_hazards", num_hazards, 0, 64),
        ):
            if int(v) != v or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v}")
        wall_set = {(int(r), int(c)) for r, c in walls}
        bad = sorted((r, c) for r, c in wall_set if not (0 <= r < h and 0 <= c < w))
        if bad:
            raise ValueError(f"walls {bad} lie outside the {h}x{w} grid")
        free = [(r, c) for r in range(h) for c in range(w) if (r, c) not in wall_set]
        need = num_agents + num_resources + num_hazards
        if len(free) < need:
            raise ValueError(
                f"{h}x{w} grid with {len(wall_set)} interior walls has {len(free)} free "
                f"cells, too few for {num_agents} agents + {num_resources} resources + "
                f"{num_hazards} hazards (need >= {need})"
            )
        self.num_agents, self.height, self.width = int(num_agents), int(h), int(w)
        self.view_radius = int(view_radius)
        self.num_resources, self.num_hazards = int(num_resources), int(num_hazards)
        self.rotate_view, self.checked = bool(rotate_view), bool(checked)
        self.walls = tuple(sorted(wall_set))
        # Padded cell index (row + P) * Wp + (col + P) names every cell a window, a
        # front cell or a push destination can reach, so equality means same cell.
        self._pad = max(self.view_radius, 2)
        self._wp = self.width + 2 * self._pad
        self._free_row = np.array([r for r, _ in free], np.int32)  # rank -> row
        self._free_col = np.array([c for _, c in free], np.int32)
        rank = np.full((h, w), len(free), np.int32)  # walls: past every rank
        rank[self._free_row, self._free_col] = np.arange(len(free), dtype=np.int32)
        self._rank = rank.reshape(-1)
        # View offsets per heading: view cell (v, u) is a = v - r rows ahead-negative
        # and b = u - r to the right; world offset = -a * forward + b * right.
        v = self.view_radius
        a, b = np.meshgrid(np.arange(-v, v + 1), np.arange(-v, v + 1), indexing="ij")
        fwd = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])
        offs = [
            -a[..., None] * fwd[k] + b[..., None] * fwd[(k + 1) % 4] for k in range(4)
        ]
        self._offsets = np.stack(offs).astype(np.int32)  # (4, V, V, 2)

    # ----- configuration --------------------------------------------------------
    def default_params(self) -> PainGridParams:
        return PainGridParams()

    def validate_params(self, params) -> None:
        super().validate_params(params)
        for name in (
            "resource_reward",
            "hazard_damage",
            "attack_damage",
            "attack_cost",
            "clear_cost",
        ):
            _check_concrete(getattr(params, name), np.isfinite, f"{name} must be finite")
        for name in ("regrow_prob", "hazard_respawn_prob", "shared_reward"):
            _check_concrete(
                getattr(params, name), lambda x: (x >= 0) & (x <= 1), f"{name} in [0, 1]"
            )

    @property
    def num_actions(self) -> int:
        return 8

    @property
    def obs_shape(self) -> tuple[int, ...]:
        v = 2 * self.view_radius + 1
        return (v, v, len(CHANNELS))

    def action_space(self, params=None) -> Discrete:
        return Discrete(8)

    def observation_space(self, params=None) -> Box:
        return Box(0.0, 1.0, self.obs_shape, jnp.float32)

    # ----- helpers ----------------------------------------------------------------
    def _cell(self, row, col):
        return (row + self._pad) * self._wp + (col + self._pad)

    def _is_wall(self, row, col):
        out = (row < 0) | (row >= self.height) | (col < 0) | (col >= self.width)
        if not self.walls:
            return out
        r = jnp.clip(row, 0, self.height - 1)
        c = jnp.clip(col, 0, self.width - 1)
        return out | (jnp.asarray(self._rank)[r * self.width + c] == len(self._free_row))

    def _spawn(self, occupied: list, word, count=None):
        """(row, col) of the ``u``-th free cell (rank order), ``u`` uniform below the
        number of free cells left.  ``occupied``: list of int32 ranks of distinct
        occupied free cells, ``F`` (no cell) for empty entries; ``count``: how many
        entries are cells when known statically.  The answer is the least fixed
        point of ``c = u + #{occupied <= c}``, reached from ``c = u`` in at most
        ``len(occupied)`` monotone steps."""
        f = len(self._free_row)
        if count is None:
            count = sum((o < f).astype(jnp.int32) for o in occupied)
        u = _below(word, f - count)
        c = u
        for _ in occupied:
            c = u + sum((o <= c).astype(jnp.int32) for o in occupied)
        # Stored: later spawns read this one's cell, and XLA on CPU would otherwise
        # recompute the whole chain of earlier spawns inside every consumer.
        c = _stored(c)
        return c, *self._unrank(c)

    # Without interior walls a cell's rank is its row-major index: arithmetic, no
    # table gathers (which XLA on CPU does not vectorise across a batch).
    def _rank_of(self, row, col):
        if not self.walls:
            return row * self.width + col
        return jnp.asarray(self._rank)[row * self.width + col]

    def _unrank(self, c):
        if not self.walls:
            row = c // self.width
            return row, c - row * self.width
        return jnp.asarray(self._free_row)[c], jnp.asarray(self._free_col)[c]

    # ----- dynamics -------------------------------------------------------------
    def reset_env(self, key, params):
        a, r, k = self.num_agents, self.num_resources, self.num_hazards
        words = _words(key, 2 * a + r + k)
        occupied, rows, cols = [], [], []
        for m in range(a + r + k):  # the occupied cells are distinct by construction
            rank, row, col = self._spawn(occupied, words[m], count=m)
            occupied.append(rank)  # the rank of (row, col)
            rows.append(row)
            cols.append(col)
        pos = jnp.stack([jnp.stack(rows), jnp.stack(cols)], -1).reshape(-1, 2)
        heading = _below(words[a + r + k :], 4)
        state = PainGridState(
            agent_pos=pos[:a],
            heading=heading,
            resource_pos=pos[a : a + r],
            resource_present=jnp.ones((r,), bool),
            hazard_pos=pos[a + r :],
            hazard_present=jnp.ones((k,), bool),
            time=jnp.zeros((), jnp.int32),
            **_zero_records(a),
        )
        return self.get_obs(state), state

    def step_env(self, key, state: PainGridState, actions, params):
        a, nr, nk = self.num_agents, self.num_resources, self.num_hazards
        f32, i32 = jnp.float32, jnp.int32
        eye = jnp.eye(a, dtype=bool)
        # ----- moves ----------------------------------------------------------------
        # Per-agent scalars (Python lists over the static agent axis): under a batch
        # vmap each is a batch-long vector that the CPU vectorises, where (A, A)
        # tables would put the tiny agent axis innermost.
        is_move = (actions >= UP) & (actions <= LEFT)
        heading = jnp.where(is_move, actions - 1, state.heading)
        dr, dc = _delta(heading)
        rows = [state.agent_pos[i, 0] for i in range(a)]
        cols = [state.agent_pos[i, 1] for i in range(a)]
        t_rows = [rows[i] + dr[i] * is_move[i] for i in range(a)]
        t_cols = [cols[i] + dc[i] * is_move[i] for i in range(a)]
        cur = [self._cell(rows[i], cols[i]) for i in range(a)]
        tgt, stays = [], []
        for i in range(a):
            wants = is_move[i] & ~self._is_wall(t_rows[i], t_cols[i])
            tgt.append(jnp.where(wants, self._cell(t_rows[i], t_cols[i]), cur[i]))
            stays.append(~wants)
        others = [[j for j in range(a) if j != i] for i in range(a)]
        enters = [
            [tgt[i] == cur[j] if j != i else None for j in range(a)] for i in range(a)
        ]
        for i in range(a):  # target conflicts and swaps
            for j in others[i]:
                stays[i] = stays[i] | (tgt[i] == tgt[j]) | (enters[i][j] & enters[j][i])
        for _ in range(a - 1):  # blocking propagates down chains of length < A
            stays = [
                functools.reduce(
                    jnp.logical_or,
                    [stays[i]] + [enters[i][j] & stays[j] for j in others[i]],
                )
                for i in range(a)
            ]
        row = jnp.stack([jnp.where(stays[i], rows[i], t_rows[i]) for i in range(a)])
        col = jnp.stack([jnp.where(stays[i], cols[i], t_cols[i]) for i in range(a)])
        row, col = _stored((row, col))  # read by everything below: compute once
        cell = self._cell(row, col)
        # ----- resources ------------------------------------------------------------
        res_r, res_c = state.resource_pos[:, 0], state.resource_pos[:, 1]
        got = (
            cell[:, None] == self._cell(res_r, res_c)[None, :]
        ) & state.resource_present
        res_present = state.resource_present & ~jnp.any(got, 0)
        # ----- attacks --------------------------------------------------------------
        attack = actions == ATTACK
        hits = attack[:, None] & _near(row[:, None], col[:, None], row, col) & ~eye
        # ----- clears and pushes (cell ahead, pre-step hazards) ---------------------
        hz_r, hz_c = state.hazard_pos[:, 0], state.hazard_pos[:, 1]
        hz_cell = self._cell(hz_r, hz_c)
        ahead = (
            self._cell(row + dr, col + dc)[:, None] == hz_cell
        ) & state.hazard_present
        clears = (actions == CLEAR)[:, None] & ahead  # (A, K)
        cleared = jnp.any(clears, 0)
        pushes = (actions == PUSH)[:, None] & ahead & ~cleared
        d_r = hz_r + jnp.sum(pushes * dr[:, None], 0)  # exact when one pusher
        d_c = hz_c + jnp.sum(pushes * dc[:, None], 0)
        d_cell = self._cell(d_r, d_c)
        res_cell = jnp.where(res_present, self._cell(res_r, res_c), -1)
        old_hz = jnp.where(state.hazard_present, hz_cell, -1)
        moves_hz = (
            (jnp.sum(pushes, 0) == 1)
            & ~self._is_wall(d_r, d_c)
            & ~jnp.any(d_cell[:, None] == old_hz[None, :], 1)
            & ~jnp.any(d_cell[:, None] == res_cell[None, :], 1)
        )
        moves_hz = moves_hz & (
            jnp.sum((d_cell[:, None] == d_cell[None, :]) & moves_hz[None, :], 1) == 1
        )
        pushes = pushes & moves_hz[None, :]
        new_hr, new_hc = jnp.where(moves_hz, d_r, hz_r), jnp.where(moves_hz, d_c, hz_c)
        hz_present = state.hazard_present & ~cleared
        new_hr, new_hc, hz_present = _stored((new_hr, new_hc, hz_present))
        # ----- hazard damage, harm and help -------------------------------------------
        in_new = _near(row[:, None], col[:, None], new_hr, new_hc) & hz_present  # (A,K)
        in_old = _near(row[:, None], col[:, None], hz_r, hz_c) & state.hazard_present
        dmg = -params.hazard_damage
        hazard_hurt = dmg * jnp.sum(in_new, 1).astype(f32)
        caused = (in_new & ~in_old).astype(f32)  # (A=victim, K)
        # (A, A, K) sums, not matmuls: XLA on CPU runs a batched tiny dot per copy.
        # Counts of 0/1 terms are exact in float32, so the result is the same.
        pushed_to = jnp.sum(pushes[:, None, :].astype(f32) * caused[None, :, :], -1)
        harm = -params.attack_damage * hits.astype(f32) + dmg * pushed_to
        removed = clears | pushes  # (A=helper, K)
        gone = in_old & ~in_new  # (A=victim, K)
        help_ = jnp.any(removed[:, None, :] & gone[None, :, :], -1).astype(f32)
        # ----- rewards ----------------------------------------------------------------
        own = (
            params.resource_reward * jnp.sum(got, 1)
            + params.attack_damage * jnp.sum(hits, 0)
            + params.attack_cost * attack
            + params.clear_cost * (actions == CLEAR)
            - hazard_hurt
        ).astype(f32)
        s = params.shared_reward
        rewards = ((1.0 - s) * own + s * jnp.mean(own)).astype(f32)
        # ----- respawns (absent slots, in order, each its own words) -----------------
        words = _words(key, max(2 * (nr + nk), 1))
        f = len(self._free_row)
        # a hazard under an agent is one occupied cell, not two (ranks stay distinct)
        under_agent = jnp.any(cell[:, None] == self._cell(new_hr, new_hc)[None, :], 0)
        occupied = [self._rank_of(row[i], col[i]) for i in range(a)]
        occupied += [
            jnp.where(res_present[m], self._rank_of(res_r[m], res_c[m]), f)
            for m in range(nr)
        ]
        hz_on = hz_present & ~under_agent
        occupied += [
            jnp.where(hz_on[m], self._rank_of(new_hr[m], new_hc[m]), f) for m in range(nk)
        ]
        res_pos, hz_pos = [], []
        slots = [(m, res_r, res_c, res_present, params.regrow_prob) for m in range(nr)]
        slots += [
            (m, new_hr, new_hc, hz_present, params.hazard_respawn_prob) for m in range(nk)
        ]
        new_present = []
        for n, (m, rr, cc, present, prob) in enumerate(slots):
            born = ~present[m] & (_uniform(words[2 * n]) < prob)
            rank, sr, sc = self._spawn(occupied, words[2 * n + 1])
            pr, pc = jnp.where(born, sr, rr[m]), jnp.where(born, sc, cc[m])
            slot = a + n  # this slot's entry in `occupied`
            occupied[slot] = jnp.where(born, rank, occupied[slot])
            (res_pos if n < nr else hz_pos).append(jnp.stack([pr, pc]))
            new_present.append(present[m] | born)
        new_state = PainGridState(
            agent_pos=jnp.stack([row, col], -1),
            heading=heading,
            resource_pos=_stack(res_pos),
            resource_present=jnp.stack(new_present[:nr]) if nr else res_present,
            hazard_pos=_stack(hz_pos),
            hazard_present=jnp.stack(new_present[nr:]) if nk else hz_present,
            time=state.time + 1,
            harm=harm,
            help=help_,
            hazard_hurt=hazard_hurt,
            episode_return=state.episode_return + rewards,
            harm_total=state.harm_total + harm,
            help_total=state.help_total + help_,
            resources_collected=state.resources_collected + jnp.sum(got, 1, dtype=i32),
            hazard_damage_total=state.hazard_damage_total + hazard_hurt,
            attacks=state.attacks + attack.astype(i32),
        )
        return self.get_obs(new_state), new_state, rewards, jnp.zeros((), bool)

    # ----- observation and statistics -------------------------------------------
    def _windows(self, state):
        """(row, col) int32 ``(A, V, V)`` of every agent's view cells."""
        off = jnp.asarray(self._offsets)
        off = off[state.heading] if self.rotate_view else off[0][None]
        row = state.agent_pos[:, 0, None, None] + off[..., 0]
        col = state.agent_pos[:, 1, None, None] + off[..., 1]
        return row, col

    def get_obs(self, state: PainGridState) -> jax.Array:
        """float32 ``(A, V, V, 6)`` (see the class docstring)."""
        a, v = self.num_agents, 2 * self.view_radius + 1
        # Stored first: else XLA on CPU fuses and recomputes the whole step
        # (moves, pushes, respawns) inside every observation element.
        state = state.replace(**_stored(_obs_fields(state)))
        win_row, win_col = self._windows(state)
        win = self._cell(win_row, win_col)  # (A, V, V)
        row, col = state.agent_pos[:, 0], state.agent_pos[:, 1]
        cell = self._cell(row, col)
        dr, dc = _delta(state.heading)
        front = self._cell(row + dr, col + dc)
        # One int32 bit per channel, OR-ed over one (A, V, V) comparison per object
        # (elementwise on batch-long vectors), then split into channels once: no
        # reductions over a tiny trailing object axis and no six-way stack.
        i32 = jnp.int32
        bits = self._is_wall(win_row, win_col).astype(i32)
        for m in range(self.num_resources):
            rc = self._cell(state.resource_pos[m, 0], state.resource_pos[m, 1])
            on = (win == jnp.where(state.resource_present[m], rc, -1)).astype(i32)
            bits = bits | (on << 1)
        for m in range(self.num_hazards):
            hc = self._cell(state.hazard_pos[m, 0], state.hazard_pos[m, 1])
            on = (win == jnp.where(state.hazard_present[m], hc, -1)).astype(i32)
            bits = bits | (on << 2)
        centre = np.zeros((v, v), np.int32)
        centre[self.view_radius, self.view_radius] = 1 << 3
        bits = bits | centre
        not_self = ~np.eye(a, dtype=bool)
        for j in range(a):
            seen = (win == cell[j]) & not_self[:, j, None, None]
            bits = bits | (seen.astype(i32) << 4) | ((win == front[j]).astype(i32) << 5)
        shifts = np.arange(len(CHANNELS), dtype=np.int32)
        bits = _stored(bits)  # else every channel recomputes all the comparisons
        return ((bits[..., None] >> shifts) & 1).astype(jnp.float32)

    def visible_pain(self, state: PainGridState, level: jax.Array) -> jax.Array:
        """float32 ``(A, V, V, 1)``: for each viewer, ``level[j]`` (``level`` float32
        ``(A,)``) of every *other* agent ``j`` at ``j``'s cell in the viewer's
        egocentric (possibly rotated) window, 0 elsewhere."""
        a = self.num_agents
        win = self._cell(*self._windows(state))[..., None]
        cell = self._cell(state.agent_pos[:, 0], state.agent_pos[:, 1])
        seen = (win == cell) & ~jnp.eye(a, dtype=bool)[:, None, None, :]
        return jnp.sum(seen * jnp.asarray(level, jnp.float32), -1, keepdims=True)

    def episode_stats(self, state: PainGridState) -> dict[str, jax.Array]:
        off = ~jnp.eye(self.num_agents, dtype=bool)
        return {
            "return": state.episode_return,
            "length": state.time,
            "harm_done": jnp.sum(state.harm_total * off, 1),
            "harm_matrix": state.harm_total,
            "help_given": jnp.sum(state.help_total * off, 1),
            "help_matrix": state.help_total,
            "resources": state.resources_collected,
            "hazard_damage": state.hazard_damage_total,
            "attacks": state.attacks,
        }

    def render(self, state: PainGridState, cell: int = 8) -> np.ndarray:
        """uint8 ``(H * cell, W * cell, 3)`` RGB frame of one (unbatched) state."""
        from pain_jax.envs.pain_grid_render import render

        return render(self, state, cell)


def _words(key, n: int) -> jax.Array:
    """``random_words(key, n)``, stored: each word feeds a different spawn, and XLA
    on CPU would otherwise recompute the whole threefry hash inside every consumer
    (``_stored`` keeps int32; the round trip through int32 keeps every bit)."""
    return _stored(random_words(key, n).astype(jnp.int32)).astype(jnp.uint32)


def _zero_records(a: int) -> dict:
    z, zi = jnp.zeros((a,), jnp.float32), jnp.zeros((a,), jnp.int32)
    zz = jnp.zeros((a, a), jnp.float32)
    return dict(
        harm=zz,
        help=zz,
        hazard_hurt=z,
        episode_return=z,
        harm_total=zz,
        help_total=zz,
        resources_collected=zi,
        hazard_damage_total=z,
        attacks=zi,
    )


def _obs_fields(state: PainGridState) -> dict:
    names = ("agent_pos", "heading", "resource_pos", "resource_present")
    names += ("hazard_pos", "hazard_present")
    return {n: getattr(state, n) for n in names}


def _stack(pos: list) -> jax.Array:
    return jnp.stack(pos) if pos else jnp.zeros((0, 2), jnp.int32)


def make_state(
    env: PainGrid,
    agents,
    headings=None,
    resources=(),
    hazards=(),
    time: int = 0,
) -> PainGridState:
    """A hand-placed state: ``agents`` (A (row, col) pairs), ``resources`` and
    ``hazards`` (at most R and K pairs; missing slots are absent), headings default
    up.  Event records and episode totals start at zero."""
    a, r, k = env.num_agents, env.num_resources, env.num_hazards
    if len(agents) != a or len(resources) > r or len(hazards) > k:
        raise ValueError(f"need {a} agents, <= {r} resources and <= {k} hazards")

    def slots(cells, n):
        pos = np.zeros((n, 2), np.int32)
        pos[: len(cells)] = np.asarray(cells, np.int32).reshape(-1, 2)
        return jnp.asarray(pos), jnp.arange(n) < len(cells)

    res_pos, res_on = slots(resources, r)
    hz_pos, hz_on = slots(hazards, k)
    return PainGridState(
        agent_pos=jnp.asarray(agents, jnp.int32).reshape(a, 2),
        heading=jnp.asarray([0] * a if headings is None else headings, jnp.int32),
        resource_pos=res_pos,
        resource_present=res_on,
        hazard_pos=hz_pos,
        hazard_present=hz_on,
        time=jnp.asarray(time, jnp.int32),
        **_zero_records(a),
    )
