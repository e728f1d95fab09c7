"""Acting and re-evaluating under the same pain.

The noise a policy acted under is part of its behaviour.  :func:`act` gives every row
(agent x environment copy x population member, flattened to one batch axis ``B``) its
own pain key, split from the step's key, and returns the keys and levels it used;
:func:`evaluate` recomputes log-probabilities of stored actions from the stored
``(obs, action, pain level, pain key)``, row by row, so a learner gets an importance
ratio of 1 before its first update whatever minibatch or order it draws rows in.

Keys may be new-style typed keys (``jax.random.key``) or raw ``uint32[2]`` keys;
``pain_key`` has the key's shape with a leading ``B`` axis.

Feed-forward nets are called as ``model.apply(variables, obs, level, params, mask,
rngs={"pain": key})`` and recurrent ones as ``model.apply(variables, carry, obs,
reset, level, params, mask, rngs=...)`` (see :mod:`pain_jax.nets`).
"""

from __future__ import annotations

from typing import Any

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from pain_jax.pain.dynamics import PainParams


@struct.dataclass
class Acted:
    """What one acting step returns (and a rollout stores), one row per actor.

    Attributes:
      action: int32 ``(B,)``.
      log_prob: float32 ``(B,)``, log-probability of ``action`` as acted.
      value: float32 ``(B,)``, critic value.
      pain_key: keys ``(B, *key_shape)``, the pain key of each row.
      pain_level: float32 ``(B,)``, the pain level each row acted under.
    """

    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    pain_key: jax.Array
    pain_level: jax.Array


def _rows(x, batch: int):
    """``x`` (or a scalar) broadcast to a leading batch axis."""
    x = jnp.asarray(x)
    return jnp.broadcast_to(x, (batch,) + x.shape[1:] if x.ndim else (batch,))


def split_keys(key: jax.Array, batch: int) -> tuple[jax.Array, jax.Array]:
    """``(action_key, pain_keys)``: the step key split into one action key and one
    pain key per row, ``(batch, *key_shape)`` (how :func:`act` derives its keys)."""
    action_key, pain_root = jax.random.split(key)
    return action_key, jax.random.split(pain_root, batch)


def _feedforward_rows(model: nn.Module, variables, params: PainParams):
    """Per-row apply: ``(key, obs, level, mask) -> (logits, value)`` for one row."""

    def one(key, obs, level, mask):
        pi, value = model.apply(
            variables,
            obs[None],
            level[None],
            params,
            None if mask is None else mask[None],
            rngs={"pain": key},
        )
        return pi.logits[0], value[0]

    return one


def act(
    model: nn.Module,
    variables: Any,
    obs: jax.Array,
    level: jax.Array,
    key: jax.Array,
    params: PainParams,
    action_mask: jax.Array | None = None,
) -> Acted:
    """Sample actions for a batch of rows under pain.

    Args:
      model: a feed-forward actor-critic (``ActorCriticMLP``, ``ActorCriticCNN``).
      variables: its flax variables.
      obs: float ``(B, *obs_shape)``.
      level: float32 ``(B,)`` (or scalar), the pain level of each row.
      key: one key for this step; split into the action key and ``B`` pain keys.
      params: ``PainParams`` (traced).
      action_mask: optional bool ``(B, num_actions)``.

    Returns:
      :class:`Acted` with one entry per row.
    """
    batch = obs.shape[0]
    level = _rows(jnp.asarray(level, jnp.float32), batch)
    action_key, pain_key = split_keys(key, batch)
    one = _feedforward_rows(model, variables, params)
    mask_axis = None if action_mask is None else 0
    logits, value = jax.vmap(one, in_axes=(0, 0, 0, mask_axis))(
        pain_key, obs, level, action_mask
    )
    pi = distrax.Categorical(logits=logits)
    action = pi.sample(seed=action_key).astype(jnp.int32)
    return Acted(action, pi.log_prob(action), value, pain_key, level)


def evaluate(
    model: nn.Module,
    variables: Any,
    obs: jax.Array,
    action: jax.Array,
    level: jax.Array,
    pain_key: jax.Array,
    params: PainParams,
    action_mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Re-evaluate stored actions under their stored pain (rows in any order).

    Args: ``obs`` ``(N, *obs_shape)``, ``action`` int ``(N,)``, ``level`` float32
    ``(N,)``, ``pain_key`` ``(N, *key_shape)`` as returned by :func:`act`, flattened
    over any time/batch axes; ``variables`` may differ from those that acted.

    Returns:
      ``(log_prob, entropy, value)``, each float32 ``(N,)``.
    """
    one = _feedforward_rows(model, variables, params)
    mask_axis = None if action_mask is None else 0
    logits, value = jax.vmap(one, in_axes=(0, 0, 0, mask_axis))(
        pain_key, obs, jnp.asarray(level, jnp.float32), action_mask
    )
    pi = distrax.Categorical(logits=logits)
    return pi.log_prob(action), pi.entropy(), value


def _recurrent_rows(model: nn.Module, variables, params: PainParams):
    def one(key, carry, obs, reset, level, mask):
        carry, pi, value = model.apply(
            variables,
            carry[None],
            obs[None],
            reset[None],
            level[None],
            params,
            None if mask is None else mask[None],
            rngs={"pain": key},
        )
        return carry[0], pi.logits[0], value[0]

    return one


def act_recurrent(
    model: nn.Module,
    variables: Any,
    carry: jax.Array,
    obs: jax.Array,
    reset: jax.Array,
    level: jax.Array,
    key: jax.Array,
    params: PainParams,
    action_mask: jax.Array | None = None,
) -> tuple[jax.Array, Acted]:
    """One recurrent acting step: like :func:`act`, with a carry.

    Args: ``carry`` float32 ``(B, hidden)``, ``obs`` ``(B, *obs_shape)``, ``reset``
    bool ``(B,)``: true where ``obs`` starts a new episode (the previous step's
    ``done``).  Returns ``(new_carry, Acted)``.
    """
    batch = obs.shape[0]
    level = _rows(jnp.asarray(level, jnp.float32), batch)
    action_key, pain_key = split_keys(key, batch)
    one = _recurrent_rows(model, variables, params)
    mask_axis = None if action_mask is None else 0
    carry, logits, value = jax.vmap(one, in_axes=(0, 0, 0, 0, 0, mask_axis))(
        pain_key, carry, obs, jnp.asarray(reset, bool), level, action_mask
    )
    pi = distrax.Categorical(logits=logits)
    action = pi.sample(seed=action_key).astype(jnp.int32)
    return carry, Acted(action, pi.log_prob(action), value, pain_key, level)


def evaluate_recurrent(
    model: nn.Module,
    variables: Any,
    carry: jax.Array,
    obs: jax.Array,
    reset: jax.Array,
    action: jax.Array,
    level: jax.Array,
    pain_key: jax.Array,
    params: PainParams,
    action_mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Re-evaluate a stored sequence: a scan of the acting step over time.

    Args: ``carry`` float32 ``(B, hidden)`` at the start of the sequence, ``obs``
    ``(T, B, *obs_shape)``, ``reset`` bool ``(T, B)`` (as fed when acting), ``action``
    int ``(T, B)``, ``level`` float32 ``(T, B)``, ``pain_key`` ``(T, B, *key_shape)``,
    optional ``action_mask`` ``(T, B, num_actions)``.

    Returns:
      ``(log_prob, entropy, value)``, each float32 ``(T, B)``.
    """
    one = jax.vmap(
        _recurrent_rows(model, variables, params),
        in_axes=(0, 0, 0, 0, 0, None if action_mask is None else 0),
    )

    def step(carry, xs):
        key, obs_t, reset_t, action_t, level_t, mask_t = xs
        carry, logits, value = one(key, carry, obs_t, reset_t, level_t, mask_t)
        pi = distrax.Categorical(logits=logits)
        return carry, (pi.log_prob(action_t), pi.entropy(), value)

    xs = (
        pain_key,
        obs,
        jnp.asarray(reset, bool),
        action,
        jnp.asarray(level, jnp.float32),
        action_mask,
    )
    _, out = jax.lax.scan(step, carry, xs)
    return out
