"""The environment base class: explicit params, agent axis, auto-reset in ``step``.

Every environment is a pure object: static shape configuration (grid size, number of
agents, ...) lives on the instance, every number people sweep lives in a
``flax.struct`` params dataclass that is passed to each call, so a sweep is one
``vmap`` over params.

Conventions (all environments):

* ``reset(key, params) -> (obs, state)``; ``obs`` has shape ``(num_agents, *obs_shape)``.
* ``step(key, state, actions, params) -> (obs, state, rewards, done, info)`` with
  ``actions`` int32 ``(num_agents,)``, ``rewards`` float32 ``(num_agents,)`` and
  ``done`` bool ``()``.  When the episode ends, ``step`` resets by itself: the returned
  ``obs``/``state`` belong to the *next* episode, and ``info`` carries

  - ``terminated`` bool ``()`` / ``truncated`` bool ``()`` (a time limit is truncation),
  - ``final_obs`` ``(num_agents, *obs_shape)``: the true observation after this step,
    before any reset (equal to ``obs`` when not done),
  - ``episode``: dict of the statistics of the episode as it stands after this step,
    read *before* the reset (so events on the last step count); meaningful when
    ``done``.  It always has ``return`` float32 ``(num_agents,)`` and ``length`` int32.

* Out-of-range actions are clipped into the action space (documented, cheap).  An
  environment built with ``checked=True`` instead raises at run time.
* Actions of the wrong shape or dtype fail at trace time with the expected shape.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

# Re-exported: the fast threefry lives in pain_jax.prng (split_key is used by step).
from pain_jax.prng import random_words, split_key, threefry2x32  # noqa: F401

Obs = jax.Array
Info = dict[str, Any]


@struct.dataclass
class EnvParams:
    """Traced parameters shared by every environment.

    Attributes:
      max_steps: int32 ``()``, episode length (time limit; reaching it is truncation).
    """

    max_steps: int = 50


def _raise_out_of_range(bad, n):
    if bool(bad):
        raise ValueError(f"actions out of range: every action must be in [0, {n})")


class Environment:
    """Base class.  Subclasses implement ``reset_env``, ``step_env``,
    ``episode_stats``, ``default_params``, ``obs_shape`` and ``num_actions``.

    ``step_env(key, state, actions, params)`` returns
    ``(obs, state, rewards, terminated)``; truncation (time limit) and auto-reset are
    handled here, once, for every environment.  ``state`` must have an int32 field
    ``time`` (steps taken in the current episode).
    """

    num_agents: int = 2
    checked: bool = False

    # ----- to implement -------------------------------------------------------
    def default_params(self) -> EnvParams:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset_env(self, key: jax.Array, params) -> tuple[Obs, Any]:
        raise NotImplementedError  # pragma: no cover

    def step_env(self, key, state, actions, params):
        raise NotImplementedError  # pragma: no cover

    def episode_stats(self, state) -> dict[str, jax.Array]:
        raise NotImplementedError  # pragma: no cover

    @property
    def obs_shape(self) -> tuple[int, ...]:
        raise NotImplementedError  # pragma: no cover

    def get_obs(self, state) -> Obs:
        """Optional: the observation as a function of the state alone.  When a
        subclass implements it, ``step`` builds the returned observation once from
        the (possibly reset) state rather than selecting between two."""
        raise NotImplementedError  # pragma: no cover

    @property
    def num_actions(self) -> int:
        raise NotImplementedError  # pragma: no cover

    def validate_params(self, params) -> None:
        """Reject invalid concrete params before any compute (raise ValueError).

        Traced params (inside jit/vmap) are not checked; ``pj.make`` checks the
        params it returns.  Subclasses extend this and call ``super()``.
        """
        _check_concrete(
            params.max_steps,
            lambda v: (v >= 1) & (v == np.floor(v)),
            "max_steps must be >= 1 and an integer",
        )

    # ----- spaces -------------------------------------------------------------
    def action_space(self, params=None):
        from pain_jax.envs.spaces import Discrete

        return Discrete(self.num_actions)

    def observation_space(self, params=None):
        from pain_jax.envs.spaces import Box

        return Box(0.0, 1.0, self.obs_shape, jnp.float32)

    # ----- public API ---------------------------------------------------------
    def reset(self, key: jax.Array, params=None) -> tuple[Obs, Any]:
        params = self.default_params() if params is None else params
        return self.reset_env(key, params)

    def step(self, key: jax.Array, state, actions: jax.Array, params=None):
        return self.step_with_final(key, state, actions, params)[:5]

    def step_with_final(self, key: jax.Array, state, actions: jax.Array, params=None):
        """:meth:`step` plus the true post-step state before the auto-reset:
        ``(obs, state, rewards, done, info, final_state)`` (``info["final_obs"]``
        is the observation of ``final_state``).  Wrappers that observe more of the
        final state than its observation (e.g. visible pain) use it."""
        params = self.default_params() if params is None else params
        actions = self._check_actions(actions)
        key_step, key_reset = split_key(key)
        obs_st, state_st, rewards, done, info = self._step_no_reset(
            key_step, state, actions, params
        )
        obs_re, state_re = self.reset_env(key_reset, params)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_re, state_st)
        if type(self).get_obs is Environment.get_obs:
            obs = jnp.where(done, obs_re, obs_st)
        else:  # one observation of the selected state instead of two and a select
            obs = self.get_obs(state)
        return obs, state, rewards, done, info, state_st

    def _step_no_reset(self, key, state, actions, params):
        """One step without the auto-reset: ``(obs, state, rewards, done, info)``
        where ``obs``/``state`` are the true post-step ones (``obs`` is also
        ``info["final_obs"]``).  ``step`` and ``pain_jax.envs.vector.step_batch``
        add the reset on top; ``actions`` must already be checked."""
        obs_st, state_st, rewards, terminated = self.step_env(key, state, actions, params)
        truncated = (state_st.time >= params.max_steps) & ~terminated
        done = terminated | truncated
        info = {
            "terminated": terminated,
            "truncated": truncated,
            "final_obs": obs_st,
            "episode": self.episode_stats(state_st),
        }
        return obs_st, state_st, rewards.astype(jnp.float32), done, info

    def _check_actions(self, actions: jax.Array) -> jax.Array:
        actions = jnp.asarray(actions)
        if actions.shape != (self.num_agents,):
            raise ValueError(
                f"{type(self).__name__}.step expects actions of shape "
                f"({self.num_agents},) (one int per agent), got {actions.shape}; "
                "vmap step over batch axes"
            )
        if not jnp.issubdtype(actions.dtype, jnp.integer):
            raise TypeError(
                f"{type(self).__name__}.step expects integer actions (int32), "
                f"got dtype {actions.dtype}"
            )
        actions = actions.astype(jnp.int32)
        n = self.num_actions
        if self.checked:
            bad = jnp.any((actions < 0) | (actions >= n))
            jax.debug.callback(_raise_out_of_range, bad, n)
        return jnp.clip(actions, 0, n - 1)


def _check_concrete(value, ok, message: str) -> None:
    """Run a Python check on a params field when it is concrete (not traced)."""
    if isinstance(value, jax.core.Tracer):
        return
    arr = np.asarray(value)
    if not np.all(ok(arr)):
        raise ValueError(f"invalid params: {message} (got {arr.tolist()})")


def check_state_field(x: jax.Array, shape: tuple, dtype) -> None:
    """Shape/dtype assertion used by tests and env constructors."""
    chex.assert_shape(x, shape)
    chex.assert_type(x, dtype)
