"""A tiny, fully hand-computable environment for the API contract and field cases.

``Counter``: ``num_agents`` walkers on a ring of ``size`` cells.  Everything a step
does can be worked out by hand, so tests place objects explicitly (C20) instead of
relying on the bit patterns of a seed.

* actions: int32 ``(num_agents,)`` in ``{0, 1, 2}`` = stay, right, left.
* reset: every agent on a uniformly random cell (the only random draw).
* step: ``pos <- (pos + move) mod size`` with ``move = 0, +1, -1``; ``counts += action``;
  ``rewards = reward_scale * action`` (float32); ``time += 1``.
* termination: when ``goal >= 0`` and agent 0's ``counts`` reaches ``goal``;
  truncation at ``max_steps`` is the base class's job.
* observation of agent ``i``: float32 ``(size + 1,)`` = one-hot of its own cell, then
  ``time / max_steps`` (so the first observation of an episode ends in 0 and the true
  final observation of a time-limited episode ends in 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

import pain_jax as pj
from pain_jax.envs.api import Environment, EnvParams


@struct.dataclass
class CounterParams(EnvParams):
    """Traced numbers of ``Counter``.

    Attributes:
      max_steps: int32 ``()``, time limit (truncation).
      reward_scale: float32 ``()``, reward per unit of action.
      goal: int32 ``()``, terminate when agent 0's count reaches it; ``< 0`` = never.
    """

    max_steps: int = 5
    reward_scale: float = 1.0
    goal: int = -1


@struct.dataclass
class CounterState:
    time: jax.Array  # int32 (), steps taken in this episode
    pos: jax.Array  # int32 (num_agents,), cell of each agent on the ring
    counts: jax.Array  # int32 (num_agents,), sum of actions this episode
    returns: jax.Array  # float32 (num_agents,), sum of rewards this episode


class Counter(Environment):
    """See the module docstring."""

    def __init__(self, num_agents: int = 2, size: int = 5, checked: bool = False):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.num_agents = num_agents
        self.size = size
        self.checked = checked

    def default_params(self) -> CounterParams:
        return CounterParams()

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (self.size + 1,)

    @property
    def num_actions(self) -> int:
        return 3

    def reset_env(self, key, params):
        pos = jax.random.randint(key, (self.num_agents,), 0, self.size, jnp.int32)
        state = CounterState(
            time=jnp.zeros((), jnp.int32),
            pos=pos,
            counts=jnp.zeros((self.num_agents,), jnp.int32),
            returns=jnp.zeros((self.num_agents,), jnp.float32),
        )
        return self.observe(state, params), state

    def step_env(self, key, state, actions, params):
        del key  # the dynamics are deterministic
        rewards = params.reward_scale * actions.astype(jnp.float32)
        state = CounterState(
            time=state.time + 1,
            pos=(state.pos + jnp.where(actions == 2, -1, actions)) % self.size,
            counts=state.counts + actions,
            returns=state.returns + rewards,
        )
        terminated = (params.goal >= 0) & (state.counts[0] >= params.goal)
        return self.observe(state, params), state, rewards, terminated

    def observe(self, state: CounterState, params) -> jax.Array:
        """float32 ``(num_agents, size + 1)``."""
        cells = jax.nn.one_hot(state.pos, self.size, dtype=jnp.float32)
        frac = jnp.full((self.num_agents, 1), state.time / params.max_steps, jnp.float32)
        return jnp.concatenate([cells, frac], axis=1)

    def episode_stats(self, state: CounterState) -> dict[str, jax.Array]:
        return {"return": state.returns, "length": state.time, "counts": state.counts}


def make_counter(num_agents: int = 2, size: int = 5, checked: bool = False) -> Counter:
    """Factory for ``pj.register``."""
    return Counter(num_agents=num_agents, size=size, checked=checked)


#: Name under which the tests run the toy next to the registered environments (it is
#: built directly, never registered, so the registry stays what users see).
TOY = "_toy_counter"
#: Every registered environment plus the toy, fixed at collection time.
ENV_NAMES = [*pj.registered_names(), TOY]


def make_env(name: str, **overrides):
    """``pj.make`` for registered names; the toy is built directly (same rules)."""
    if name != TOY:
        return pj.make(name, **overrides)
    static = {
        k: overrides.pop(k) for k in ("num_agents", "size", "checked") if k in overrides
    }
    env = Counter(**static)
    return env, env.default_params().replace(**overrides)
