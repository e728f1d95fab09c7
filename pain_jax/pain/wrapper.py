"""An environment wrapper that carries each agent's pain and can make it visible.

``PainWrapper(env, observe_own=..., observe_others=...)`` wraps any pain_jax
:class:`~pain_jax.envs.api.Environment`.  Its ``step`` steps the inner environment,
then drives each agent's :class:`PainState` with the per-step reward the environment
returned (:func:`pain_update`).  By option the observations get

* ``observe_own``: the agent's own pain level ("felt" pain), 1 feature;
* ``observe_others``: the other agents' pain levels ("seen" pain, a visible wince),
  ``num_agents - 1`` features, in increasing agent index, skipping the agent itself.

Flat observations ``(A, D)`` get these as extra features ``(A, D + k)``; spatial
observations ``(A, H, W, C)`` (channels last) get them as ``k`` extra constant
channels ``(A, H, W, C + k)``.  An environment that can *place* the others' pain in
its observation (a method ``visible_pain(state, level) -> (A, H, W, 1)``, e.g.
``pain_grid``: each visible agent's pain at its cell in the viewer's egocentric view)
gets ``observe_others`` as that one channel instead: pain is seen only on agents in
view.  With any pain observed the observation is float32 in
``[min(low, 0), max(high, cap)]``, and ``observation_space`` says so.

The pain is reset to zero by ``reset`` and, when ``reset_on_done`` (default), by the
auto-reset at the end of an episode.  The learner reads it from the state
(``state.pain``, or :meth:`PainWrapper.pain_level`) to act, and from ``info["pain"]``:
the pain after this step's reward, before any reset (``info["final_obs"]`` carries it
too).

Params: :class:`PainEnvParams` ``(env=inner params, pain=PainParams)``, all traced;
``pain`` fields may carry an agent axis ``(A,)`` (e.g. per-agent thresholds).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pain_jax.envs.api import Environment
from pain_jax.envs.spaces import Box
from pain_jax.pain.dynamics import (
    PainParams,
    PainState,
    pain_init,
    pain_update,
    validate_pain_params,
)


@struct.dataclass
class PainEnvParams:
    """Attributes: ``env``: the inner environment's params; ``pain``: ``PainParams``."""

    env: Any
    pain: PainParams = PainParams()


@struct.dataclass
class PainEnvState:
    """Attributes: ``env``: inner state; ``pain``: ``PainState`` with fields ``(A,)``;
    ``time``: int32 ``()``, the inner state's step counter."""

    env: Any
    pain: PainState
    time: jax.Array


class PainWrapper(Environment):
    """Pain-carrying wrapper (see the module docstring)."""

    def __init__(
        self,
        env: Environment,
        observe_own: bool = False,
        observe_others: bool = False,
        reset_on_done: bool = True,
        pain_params: PainParams | None = None,
    ):
        self.env = env
        self.num_agents = env.num_agents
        self.checked = env.checked
        self.observe_own = observe_own
        self.observe_others = observe_others
        self.reset_on_done = reset_on_done
        self._pain_params = PainParams() if pain_params is None else pain_params
        n = env.num_agents
        # Seen pain placed in the view by the environment, when it can.
        self.placed_pain = observe_others and hasattr(env, "visible_pain")
        if self.placed_pain and type(env).step is not Environment.step:
            raise ValueError(
                "observe_others with placed pain needs the environment itself, not a "
                f"wrapper overriding step ({type(env).__name__})"
            )
        # others[i] = agents other than i, in increasing index (static).
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)])

    # ----- configuration ------------------------------------------------------
    @property
    def num_extra(self) -> int:
        """Number of pain features (or channels) appended to each observation."""
        others = 1 if self.placed_pain else self.num_agents - 1
        return int(self.observe_own) + int(self.observe_others) * others

    def default_params(self) -> PainEnvParams:
        return PainEnvParams(env=self.env.default_params(), pain=self._pain_params)

    def wrap_params(self, env_params, pain_params: PainParams | None = None):
        """``PainEnvParams`` from inner params (e.g. from ``pj.make``)."""
        pain = self._pain_params if pain_params is None else pain_params
        return PainEnvParams(env=env_params, pain=pain)

    def validate_params(self, params: PainEnvParams) -> None:
        self.env.validate_params(params.env)
        validate_pain_params(params.pain)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        inner = tuple(self.env.obs_shape)
        return inner[:-1] + (inner[-1] + self.num_extra,)

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def action_space(self, params=None):
        return self.env.action_space(None if params is None else params.env)

    def observation_space(self, params: PainEnvParams | None = None):
        params = self.default_params() if params is None else params
        inner = self.env.observation_space(params.env)
        if self.num_extra == 0:
            return inner
        cap = float(np.max(np.asarray(params.pain.cap)))
        return Box(
            min(float(inner.low), 0.0),
            max(float(inner.high), cap),
            self.obs_shape,
            jnp.float32,
        )

    def episode_stats(self, state: PainEnvState) -> dict[str, jax.Array]:
        return self.env.episode_stats(state.env)

    def pain_level(self, state: PainEnvState) -> jax.Array:
        """float32 ``(A,)``: the pain each agent feels now (to act under)."""
        return state.pain.level

    # ----- observation --------------------------------------------------------
    def observe(self, obs: jax.Array, level: jax.Array, env_state=None) -> jax.Array:
        """Append the chosen pain features to ``obs`` ``(A, *obs_shape)``
        (``env_state``: the inner state ``obs`` shows, needed for placed pain)."""
        if self.num_extra == 0:
            return obs
        parts = []
        if self.observe_own:
            parts.append(level[:, None])
        if self.observe_others and not self.placed_pain:
            parts.append(level[self._others])
        out = obs.astype(jnp.float32)
        if parts:
            feats = jnp.concatenate(parts, axis=-1).astype(jnp.float32)  # (A, k)
            # Spatial obs: one constant channel per feature over the grid.
            feats = feats.reshape((feats.shape[0],) + (1,) * (obs.ndim - 2) + (-1,))
            feats = jnp.broadcast_to(feats, obs.shape[:-1] + (feats.shape[-1],))
            out = jnp.concatenate([out, feats], axis=-1)
        if self.placed_pain:
            seen = self.env.visible_pain(env_state, level).astype(jnp.float32)
            out = jnp.concatenate([out, seen], axis=-1)
        return out

    # ----- dynamics -----------------------------------------------------------
    def reset(self, key: jax.Array, params: PainEnvParams | None = None):
        params = self.default_params() if params is None else params
        obs, env_state = self.env.reset(key, params.env)
        pain = pain_init((self.num_agents,))
        state = PainEnvState(env=env_state, pain=pain, time=env_state.time)
        return self.observe(obs, pain.level, env_state), state

    def step(
        self, key, state: PainEnvState, actions, params: PainEnvParams | None = None
    ):
        return self.step_with_final(key, state, actions, params)[:5]

    def step_with_final(
        self, key, state: PainEnvState, actions, params: PainEnvParams | None = None
    ):
        """:meth:`step` plus the inner environment's true post-step state before the
        auto-reset (``None`` when the inner environment overrides ``step``, e.g. a
        wrapper): recorders read per-step events of the last step from it."""
        params = self.default_params() if params is None else params
        if type(self.env).step is Environment.step:
            obs, env_state, rewards, done, info, final = self.env.step_with_final(
                key, state.env, actions, params.env
            )
        else:
            obs, env_state, rewards, done, info = self.env.step(
                key, state.env, actions, params.env
            )
            final = None
        pain = pain_update(state.pain, rewards, params.pain)
        pain = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.num_agents,)), pain)
        info = dict(info)
        info["pain"] = pain
        info["final_obs"] = self.observe(info["final_obs"], pain.level, final)
        if self.reset_on_done:
            fresh = pain_init((self.num_agents,))
            pain = jax.tree.map(lambda f, p: jnp.where(done, f, p), fresh, pain)
        state = PainEnvState(env=env_state, pain=pain, time=env_state.time)
        obs = self.observe(obs, pain.level, env_state)
        return obs, state, rewards, done, info, final
