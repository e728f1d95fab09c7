"""Batched stepping: many copies of one environment, one key per batch step.

``jax.vmap(env.step)`` is the reference semantics, and it costs two things every
step that a batch rarely needs: a reset of every copy (computed, then discarded by
a select unless the copy finished) and a tree of per-copy keys.  ``step_batch``
keeps the same contract per copy and avoids both:

* **one key per batch step.**  Copy ``e`` draws from ``split_key(k_step, E)[e]``
  (counter-mode threefry: one hash per copy, no split tree), and the reset keys are
  only derived when a reset happens.
* **the auto-reset as a real branch.**  ``lax.cond(any(done), reset-and-select,
  identity)`` sits outside the per-copy ``vmap``, so steps where no copy finished
  skip the reset entirely (with fixed-length episodes, 49 of 50 steps).  Only the
  finished copies take the reset state; the others keep their post-step state.

Per copy, the outputs obey ``Environment.step``'s contract exactly (auto-reset,
``info`` with ``terminated``/``truncated``/``final_obs``/``episode`` read before the
reset).  The random draws differ from ``vmap(env.step)`` fed with split keys, but are
deterministic per key and independent across copies.

``env`` must be an ``Environment`` (``step_batch`` builds on its ``_step_no_reset``
and ``reset_env``); wrappers that override ``step`` (``EpisodeLog``, ``DictAgents``)
are not applied.

For a handful of copies the ``cond`` costs more than it saves (batch 1 measured
slower than ``vmap(env.step)``); the gain is at batch 64 and up.

When ``step_batch`` itself is ``vmap``-ed (e.g. over seeds), JAX turns the ``cond``
into a select and the reset is computed every step again: vmap the environment
inside, not ``step_batch`` outside, where speed matters.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from pain_jax.envs.api import split_key

__all__ = ["reset_batch", "step_batch"]


def reset_batch(
    env, key: jax.Array, params=None, num_envs: int = 1, params_axis: int | None = None
) -> tuple[jax.Array, Any]:
    """Reset ``num_envs`` copies from one key.

    Args:
      env: an ``Environment``.
      key: one PRNG key; copy ``e`` resets with ``split_key(key, num_envs)[e]``.
      params: the env params (``None``: defaults), shared by every copy unless
        ``params_axis`` names the batch axis of its leaves (per-copy params).
      num_envs: static int ``E >= 1``.

    Returns:
      ``(obs, states)``: obs ``(E, A, *obs_shape)``; every state leaf gets ``E`` in
      front.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    params = env.default_params() if params is None else params
    keys = split_key(key, num_envs)
    return jax.vmap(env.reset, in_axes=(0, params_axis))(keys, params)


def step_batch(
    env,
    key: jax.Array,
    states,
    actions: jax.Array,
    params=None,
    params_axis: int | None = None,
):
    """Step ``E`` copies with one key; finished copies reset (see module doc).

    Args:
      env: an ``Environment``.
      key: one PRNG key for the whole batch step.
      states: the copies' states (``E`` in front of every leaf).
      actions: int ``(E, A)``; checked and clipped as in ``Environment.step``.
      params: as in ``reset_batch`` (shared, or per copy along ``params_axis``).

    Returns:
      ``(obs, states, rewards, done, info)`` with ``E`` in front of each leaf:
      obs ``(E, A, *obs_shape)`` float32 (the next episode's first observation where
      ``done``), rewards float32 ``(E, A)``, done bool ``(E,)``, and ``info`` as in
      ``Environment.step`` (``terminated``/``truncated`` bool ``(E,)``,
      ``final_obs`` ``(E, A, *obs_shape)``, ``episode`` stats read before the reset).
    """
    params = env.default_params() if params is None else params
    actions = jnp.asarray(actions)
    if actions.ndim != 2:
        raise ValueError(
            f"step_batch expects actions of shape (num_envs, {env.num_agents}), "
            f"got {actions.shape}"
        )
    num_envs = actions.shape[0]
    k_step, k_reset = split_key(key)

    def one_copy(k, state, act, p):
        return env._step_no_reset(k, state, env._check_actions(act), p)

    step = jax.vmap(one_copy, in_axes=(0, 0, 0, params_axis))
    obs_st, state_st, rewards, done, info = step(
        split_key(k_step, num_envs), states, actions, params
    )

    def reset_finished(_):
        keys = split_key(k_reset, num_envs)
        obs_re, state_re = jax.vmap(env.reset_env, in_axes=(0, params_axis))(keys, params)

        def pick(new, old):  # done (E,) broadcast over the leaf's trailing axes
            return jnp.where(done.reshape(done.shape + (1,) * (old.ndim - 1)), new, old)

        return jax.tree.map(pick, (obs_re, state_re), (obs_st, state_st))

    obs, state = jax.lax.cond(
        jnp.any(done), reset_finished, lambda _: (obs_st, state_st), None
    )
    return obs, state, rewards, done, info
