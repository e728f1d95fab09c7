"""Generic helpers around any ``Environment``: a dict-of-agents adapter, an episode
log that knows "no episode yet" from "a zero return", and a batched ``lax.scan``
rollout.

Shapes below use ``A`` = ``env.num_agents``, ``E`` = number of environment copies,
``T`` = number of steps, ``O`` = ``env.obs_shape``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from pain_jax.envs.api import Environment

# --------------------------------------------------------------------------------------
# Dict-of-agents adapter
# --------------------------------------------------------------------------------------


class DictAgents:
    """Present an environment in the dict-of-agents form of JaxMARL-style code.

    Agents are named ``"agent_0" .. "agent_{A-1}"`` (``self.agents``); agent ``i`` is
    row ``i`` of the wrapped environment's agent axis.

    * ``reset(key, params=None) -> (obs, state)``: ``obs[name]`` float32 ``O``.
    * ``step(key, state, actions, params=None) -> (obs, state, rewards, dones, info)``:
      ``actions[name]`` int ``()``; ``rewards[name]`` float32 ``()``;
      ``dones[name]`` and ``dones["__all__"]`` bool ``()`` (all agents end together);
      ``info`` is the wrapped environment's (``final_obs`` keeps its agent axis).

    Actions are routed by name, never by the order the caller built the dict in.  A
    dict with a missing or unknown name raises ``ValueError`` at trace time.
    """

    def __init__(self, env: Environment):
        self.env = env
        self.num_agents = env.num_agents
        self.agents = [f"agent_{i}" for i in range(env.num_agents)]

    def default_params(self):
        return self.env.default_params()

    def reset(self, key: jax.Array, params=None):
        obs, state = self.env.reset(key, params)
        return self._split(obs), state

    def step(self, key: jax.Array, state, actions: Mapping[str, Any], params=None):
        stacked = self.stack_actions(actions)
        obs, state, rewards, done, info = self.env.step(key, state, stacked, params)
        dones = {name: done for name in self.agents}
        dones["__all__"] = done
        return self._split(obs), state, self._split(rewards), dones, info

    def stack_actions(self, actions: Mapping[str, Any]) -> jax.Array:
        """``{name: action}`` -> ``(A,)`` in agent order; raises on bad names."""
        if not isinstance(actions, Mapping):
            raise TypeError(
                f"actions must be a dict keyed by agent name ({', '.join(self.agents)})"
                f", got {type(actions).__name__}"
            )
        missing = [name for name in self.agents if name not in actions]
        unknown = sorted(str(name) for name in actions if name not in self.agents)
        if missing or unknown:
            raise ValueError(
                f"actions dict must have exactly the agents {self.agents}; "
                f"missing {missing}, unknown {unknown}"
            )
        return jnp.stack([jnp.asarray(actions[name]) for name in self.agents])

    def action_space(self, agent: str | None = None, params=None):
        self._check_agent(agent)
        return self.env.action_space(params)

    def observation_space(self, agent: str | None = None, params=None):
        self._check_agent(agent)
        return self.env.observation_space(params)

    def _check_agent(self, agent: str | None) -> None:
        if agent is not None and agent not in self.agents:
            raise ValueError(f"unknown agent {agent!r}; agents are {self.agents}")

    def _split(self, x: jax.Array) -> dict[str, jax.Array]:
        return {name: x[i] for i, name in enumerate(self.agents)}


# --------------------------------------------------------------------------------------
# Episode log
# --------------------------------------------------------------------------------------


@struct.dataclass
class EpisodeLogStats:
    """Statistics of the last finished episode.

    Attributes:
      episode_return: float32 ``(A,)``, return of the last finished episode.
      episode_length: int32 ``()``, its length in steps.
      valid: bool ``()``, False until an episode has finished: before that the two
        fields above hold zeros that are *not* a measured return.
      num_episodes: int32 ``()``, episodes finished so far.
    """

    episode_return: jax.Array
    episode_length: jax.Array
    valid: jax.Array
    num_episodes: jax.Array

    @classmethod
    def init(cls, num_agents: int) -> EpisodeLogStats:
        return cls(
            episode_return=jnp.zeros((num_agents,), jnp.float32),
            episode_length=jnp.zeros((), jnp.int32),
            valid=jnp.zeros((), jnp.bool_),
            num_episodes=jnp.zeros((), jnp.int32),
        )

    def update(self, done: jax.Array, info: Mapping[str, Any]) -> EpisodeLogStats:
        """Record ``info["episode"]`` when ``done`` (bool ``()``); pure, vmappable."""
        episode = info["episode"]
        return EpisodeLogStats(
            episode_return=jnp.where(
                done, episode["return"].astype(jnp.float32), self.episode_return
            ),
            episode_length=jnp.where(
                done, episode["length"].astype(jnp.int32), self.episode_length
            ),
            valid=self.valid | done,
            num_episodes=self.num_episodes + done.astype(jnp.int32),
        )


@struct.dataclass
class EpisodeLogState:
    env_state: Any  # the wrapped environment's state
    log: EpisodeLogStats


class EpisodeLog:
    """Wrap an environment so its state carries an ``EpisodeLogStats``.

    ``reset``/``step`` keep the wrapped signatures; the state becomes
    ``EpisodeLogState(env_state, log)`` and ``info["log"]`` is the log after the step.
    Every other attribute (``num_agents``, spaces, ``default_params``...) is the
    wrapped environment's.
    """

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name: str):
        # Only called for names not found on the wrapper itself; "env" itself missing
        # (copy/pickle build the object without __init__) must not recurse.
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, key: jax.Array, params=None):
        obs, env_state = self.env.reset(key, params)
        return obs, EpisodeLogState(env_state, EpisodeLogStats.init(self.env.num_agents))

    def step(self, key: jax.Array, state: EpisodeLogState, actions, params=None):
        obs, env_state, rewards, done, info = self.env.step(
            key, state.env_state, actions, params
        )
        log = state.log.update(done, info)
        return obs, EpisodeLogState(env_state, log), rewards, done, {**info, "log": log}


# --------------------------------------------------------------------------------------
# Rollout
# --------------------------------------------------------------------------------------


@struct.dataclass
class Trajectory:
    """A batched rollout with a leading time axis.

    Attributes:
      obs: float32 ``(T, E, A, *O)``, the observation each action was chosen from.
      actions: int32 ``(T, E, A)``.
      rewards: float32 ``(T, E, A)``.
      done: bool ``(T, E)``, the episode ended at this step (the next ``obs`` row is
        the first of a new episode).
      info: the environment's ``info`` with ``(T, E)`` in front of every leaf
        (``terminated``, ``truncated``, ``final_obs``, ``episode``).
      aux: whatever the policy returned next to its actions, stacked the same way
        (``None`` if it returned actions only).
    """

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    done: jax.Array
    info: dict
    aux: Any = None


@struct.dataclass
class RolloutCarry:
    obs: jax.Array  # float32 (E, A, *O), the observation to act on next
    state: Any  # the environments' state, (E, ...) in front of every leaf


PolicyFn = Callable[[jax.Array, jax.Array], Any]


def random_policy(env) -> PolicyFn:
    """Uniform actions: ``policy(key, obs (E, A, *O)) -> int32 (E, A)``."""

    def policy(key: jax.Array, obs: jax.Array) -> jax.Array:
        return env.action_space().sample(key, obs.shape[:2])

    return policy


def reset_batch(env, key: jax.Array, params, num_envs: int) -> RolloutCarry:
    """Reset ``num_envs`` copies (one key each) with shared ``params``."""
    keys = jax.random.split(key, num_envs)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    return RolloutCarry(obs, state)


def rollout(
    env,
    policy_fn: PolicyFn,
    key: jax.Array,
    params,
    num_steps: int,
    num_envs: int,
    init: RolloutCarry | None = None,
) -> tuple[RolloutCarry, Trajectory]:
    """Run ``num_envs`` copies for exactly ``num_steps`` steps with ``lax.scan``.

    Args:
      env: an ``Environment`` (auto-resets inside ``step``).
      policy_fn: ``(key, obs (E, A, *O)) -> actions int (E, A)`` or
        ``(actions, aux)``; ``aux`` is stacked into ``Trajectory.aux``.
      key: consumed once: split into the reset key (unused when ``init`` is given) and
        one key per step, each split into a policy key and one step key per copy.
      params: shared by every copy (``vmap`` this function to sweep params).
      num_steps, num_envs: static ints; every output has ``num_steps`` in front,
        whatever the episode length.
      init: carry to continue from (e.g. the carry a previous rollout returned);
        ``None`` resets.

    Returns:
      ``(carry, trajectory)``: the carry after the last step and the ``Trajectory``.
    """
    if num_steps < 1 or num_envs < 1:
        raise ValueError(
            f"num_steps and num_envs must be >= 1, got {num_steps} and {num_envs}"
        )
    key_reset, key_scan = jax.random.split(key)
    carry = reset_batch(env, key_reset, params, num_envs) if init is None else init
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def one_step(carry: RolloutCarry, step_key: jax.Array):
        key_policy, key_envs = jax.random.split(step_key)
        out = policy_fn(key_policy, carry.obs)
        actions, aux = out if isinstance(out, tuple) else (out, None)
        keys = jax.random.split(key_envs, num_envs)
        obs, state, rewards, done, info = step(keys, carry.state, actions, params)
        traj = Trajectory(carry.obs, actions, rewards, done, info, aux)
        return RolloutCarry(obs, state), traj

    return jax.lax.scan(one_step, carry, jax.random.split(key_scan, num_steps))
