"""Sampled iterated matrix games: two-player memory-one games and an N-player PD.

Both games follow the conventions of :mod:`pain_jax.envs.payoffs` (0 = cooperate,
1 = defect; memory-one states START, CC, CD, DC, DD from each player's own view) and
the base API of :mod:`pain_jax.envs.api` (agent axis first, auto-reset in ``step``).
Every number people sweep (payoffs, episode length, discount) is a traced params field,
so a sweep over payoff tables is one ``vmap`` over params.

The default episode length is 100 steps: at the default discount 0.96 the discounted
tail cut off by the time limit is ``0.96**100 ~ 1.7 %`` of the infinite-horizon value,
so sampled returns are close to the exact (analytic) values of
``pain_jax.envs.matrix_exact`` while episodes stay short.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pain_jax.envs.api import Environment, EnvParams, _check_concrete
from pain_jax.envs.payoffs import PAYOFFS, payoff_table

DEFAULT_MAX_STEPS = 100


# --------------------------------------------------------------------------------------
# two-player games
# --------------------------------------------------------------------------------------
@struct.dataclass
class MatrixParams(EnvParams):
    """Traced parameters of a two-player iterated matrix game.

    Attributes:
      max_steps: int32 ``()``, episode length (time limit; reaching it is truncation).
      payoffs: float32 ``(2, 2, 2)``, ``payoffs[a1, a2] = (r1, r2)``.
      discount: float32 ``()``, discount for learners (the environment ignores it).
    """

    max_steps: int = DEFAULT_MAX_STEPS
    payoffs: jax.Array = struct.field(
        default_factory=lambda: jnp.asarray(payoff_table("ipd"))
    )
    discount: float = 0.96


@struct.dataclass
class MatrixState:
    """State of a two-player iterated matrix game (all counters int32).

    Attributes:
      memory: int32 ``(2,)``, each player's memory-one state from its own view
        (0 = START, 1 = CC, 2 = CD, 3 = DC, 4 = DD, own action first).
      time: int32 ``()``, steps taken in the current episode.
      returns: float32 ``(2,)``, undiscounted return of the episode so far.
      cooperations: int32 ``(2,)``, number of times each player cooperated.
      outcomes: int32 ``(4,)``, counts of the joint outcomes CC, CD, DC, DD, named
        from player 1's view (index ``2 * a1 + a2``).
    """

    memory: jax.Array
    time: jax.Array
    returns: jax.Array
    cooperations: jax.Array
    outcomes: jax.Array


class MatrixGame(Environment):
    """Iterated two-player matrix game with sampled actions (``"ipd"``, ``"imp"``,
    ``"chicken"``, ``"stag_hunt"``).

    * **Observation**: float32 ``(2, 5)``; row ``i`` is the one-hot memory-one state
      of player ``i`` from its own view: START after reset, else the previous joint
      action with its own action first (after joint (C, D) player 1 sees CD and
      player 2 sees DC).
    * **Action**: int32 ``(2,)``, 0 = cooperate, 1 = defect.
    * **Reward**: float32 ``(2,)``, ``params.payoffs[a1, a2]``.
    * **Termination**: never; the episode is truncated after ``params.max_steps``
      steps (default 100), then ``step`` resets to START.
    * **Episode statistics** (``info["episode"]``): ``return`` float32 ``(2,)``,
      ``length`` int32 ``()``, ``cooperation_rate`` float32 ``(2,)``, ``outcomes``
      int32 ``(4,)`` (counts of CC, CD, DC, DD from player 1's view).

    Args:
      game: name of the default payoff table and discount in
        :data:`pain_jax.envs.payoffs.PAYOFFS`; the payoffs themselves are params.
      checked: raise at run time on out-of-range actions instead of clipping.
    """

    num_agents = 2

    def __init__(self, game: str = "ipd", checked: bool = False):
        if game not in PAYOFFS:
            raise KeyError(f"unknown matrix game {game!r}; known: {', '.join(PAYOFFS)}")
        self.game = game
        self.checked = checked

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (5,)

    @property
    def num_actions(self) -> int:
        return 2

    def default_params(self) -> MatrixParams:
        table, discount = PAYOFFS[self.game]
        return MatrixParams(
            max_steps=DEFAULT_MAX_STEPS,
            payoffs=jnp.asarray(table, jnp.float32),
            discount=discount,
        )

    def validate_params(self, params: MatrixParams) -> None:
        super().validate_params(params)
        if not isinstance(params.payoffs, jax.core.Tracer):
            shape = np.shape(params.payoffs)
            if shape != (2, 2, 2):
                raise ValueError(
                    f"invalid params: payoffs must have shape (2, 2, 2) "
                    f"(payoffs[a1, a2] = (r1, r2)), got {shape}"
                )
        _check_concrete(params.payoffs, np.isfinite, "payoffs must be finite")
        _check_concrete(
            params.discount, lambda d: (d >= 0) & (d <= 1), "discount must be in [0, 1]"
        )

    def reset_env(self, key: jax.Array, params: MatrixParams):
        state = MatrixState(
            memory=jnp.zeros((2,), jnp.int32),
            time=jnp.zeros((), jnp.int32),
            returns=jnp.zeros((2,), jnp.float32),
            cooperations=jnp.zeros((2,), jnp.int32),
            outcomes=jnp.zeros((4,), jnp.int32),
        )
        return self.observe(state), state

    def step_env(self, key, state: MatrixState, actions, params: MatrixParams):
        payoffs = jnp.asarray(params.payoffs, jnp.float32)
        rewards = payoffs[actions[0], actions[1]]
        # Own action first: the other player's CD is my DC.
        memory = 1 + 2 * actions + actions[::-1]
        state = MatrixState(
            memory=memory.astype(jnp.int32),
            time=state.time + 1,
            returns=state.returns + rewards,
            cooperations=state.cooperations + (actions == 0).astype(jnp.int32),
            outcomes=state.outcomes.at[2 * actions[0] + actions[1]].add(1),
        )
        return self.observe(state), state, rewards, jnp.zeros((), bool)

    def observe(self, state: MatrixState) -> jax.Array:
        """One-hot memory-one states, float32 ``(2, 5)``."""
        return jax.nn.one_hot(state.memory, 5, dtype=jnp.float32)

    def episode_stats(self, state: MatrixState) -> dict[str, jax.Array]:
        return {
            "return": state.returns,
            "length": state.time,
            "cooperation_rate": _rate(state.cooperations, state.time),
            "outcomes": state.outcomes,
        }


def matrix_game(game: str):
    """Registry factory of one named game: ``(checked=False) -> MatrixGame``."""
    return functools.partial(MatrixGame, game)


def _rate(count: jax.Array, time: jax.Array) -> jax.Array:
    """``count / time`` as float32, 0 before the first step (no division by zero)."""
    return count.astype(jnp.float32) / jnp.maximum(time, 1).astype(jnp.float32)


# --------------------------------------------------------------------------------------
# N-player prisoner's dilemma (public goods game)
# --------------------------------------------------------------------------------------
@struct.dataclass
class NPlayerPDParams(EnvParams):
    """Traced parameters of the N-player prisoner's dilemma.

    Attributes:
      max_steps: int32 ``()``, episode length (time limit).
      multiplier: float32 ``()``, ``r``: the common pot is multiplied by ``r`` and
        shared equally; ``1 < r < N`` makes it a social dilemma.
      cost: float32 ``()``, ``c``: what a cooperator puts into the pot.
      discount: float32 ``()``, discount for learners (the environment ignores it).
    """

    max_steps: int = DEFAULT_MAX_STEPS
    multiplier: float = 2.0
    cost: float = 1.0
    discount: float = 0.96


@struct.dataclass
class NPlayerPDState:
    """State of the N-player prisoner's dilemma (all counters int32).

    Attributes:
      last_actions: int32 ``(N,)``, previous joint action, -1 before the first step.
      time: int32 ``()``, steps taken in the current episode.
      returns: float32 ``(N,)``, undiscounted return of the episode so far.
      cooperations: int32 ``(N,)``, number of times each agent cooperated.
      cooperator_counts: int32 ``(N + 1,)``, entry ``k`` counts the steps on which
        exactly ``k`` agents cooperated.
    """

    last_actions: jax.Array
    time: jax.Array
    returns: jax.Array
    cooperations: jax.Array
    cooperator_counts: jax.Array


class NPlayerPD(Environment):
    """Iterated N-player prisoner's dilemma as a public goods game (``"n_pd"``).

    Each cooperator pays ``c`` into a pot that is multiplied by ``r`` and shared by
    all ``N`` agents, so with ``n_C`` cooperators agent ``i`` gets
    ``r * c * n_C / N - c * [a_i = C]``.  Defecting gains ``c (1 - r / N) > 0`` whatever
    the others do, yet all cooperating (``(r - 1) c`` each) beats all defecting (0)
    when ``1 < r < N``.  With ``N = 2`` it is a prisoner's dilemma.

    * **Observation**: float32 ``(N, 4)``, egocentric (the same features for every
      agent, about itself first): ``[start, own last C, own last D, fraction of the
      other N - 1 agents who cooperated last step]``; ``[1, 0, 0, 0]`` after reset.
      The others are summarised by a fraction because the payoff depends on them only
      through their number of cooperators.
    * **Action**: int32 ``(N,)``, 0 = cooperate, 1 = defect.
    * **Reward**: float32 ``(N,)`` as above.
    * **Termination**: never; truncated after ``params.max_steps`` steps (default 100).
    * **Episode statistics**: ``return`` float32 ``(N,)``, ``length`` int32 ``()``,
      ``cooperation_rate`` float32 ``(N,)``, ``cooperator_counts`` int32 ``(N + 1,)``.

    Args:
      num_agents: ``N >= 2`` (static).
      checked: raise at run time on out-of-range actions instead of clipping.
    """

    def __init__(self, num_agents: int = 3, checked: bool = False):
        if int(num_agents) < 2:
            raise ValueError(f"num_agents must be >= 2, got {num_agents}")
        self.num_agents = int(num_agents)
        self.checked = checked

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (4,)

    @property
    def num_actions(self) -> int:
        return 2

    def default_params(self) -> NPlayerPDParams:
        return NPlayerPDParams()

    def validate_params(self, params: NPlayerPDParams) -> None:
        super().validate_params(params)
        _check_concrete(params.multiplier, np.isfinite, "multiplier must be finite")
        _check_concrete(params.cost, np.isfinite, "cost must be finite")
        _check_concrete(
            params.discount, lambda d: (d >= 0) & (d <= 1), "discount must be in [0, 1]"
        )

    def reset_env(self, key: jax.Array, params: NPlayerPDParams):
        n = self.num_agents
        state = NPlayerPDState(
            last_actions=jnp.full((n,), -1, jnp.int32),
            time=jnp.zeros((), jnp.int32),
            returns=jnp.zeros((n,), jnp.float32),
            cooperations=jnp.zeros((n,), jnp.int32),
            cooperator_counts=jnp.zeros((n + 1,), jnp.int32),
        )
        return self.observe(state), state

    def step_env(self, key, state: NPlayerPDState, actions, params: NPlayerPDParams):
        coop = (actions == 0).astype(jnp.int32)
        n_coop = coop.sum()
        pot_share = params.multiplier * params.cost * n_coop / self.num_agents
        rewards = (pot_share - params.cost * coop).astype(jnp.float32)
        state = NPlayerPDState(
            last_actions=actions.astype(jnp.int32),
            time=state.time + 1,
            returns=state.returns + rewards,
            cooperations=state.cooperations + coop,
            cooperator_counts=state.cooperator_counts.at[n_coop].add(1),
        )
        return self.observe(state), state, rewards, jnp.zeros((), bool)

    def observe(self, state: NPlayerPDState) -> jax.Array:
        """Egocentric features, float32 ``(N, 4)``."""
        last = state.last_actions
        start = last < 0
        coop = (last == 0).astype(jnp.float32)
        others = (coop.sum() - coop) / (self.num_agents - 1)
        feats = [start, last == 0, last == 1, jnp.where(start, 0.0, others)]
        return jnp.stack([f.astype(jnp.float32) for f in feats], axis=-1)

    def episode_stats(self, state: NPlayerPDState) -> dict[str, jax.Array]:
        return {
            "return": state.returns,
            "length": state.time,
            "cooperation_rate": _rate(state.cooperations, state.time),
            "cooperator_counts": state.cooperator_counts,
        }
