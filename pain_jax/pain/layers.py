"""Flax (linen) layers that inject pain into activations.

Each layer takes the activations ``x`` (float ``(*B, *F)``), the pain level ``level``
(float ``B`` prefix of ``x.shape``, or a scalar) and the traced :class:`PainParams`,
and draws its randomness from the RNG stream named ``"pain"``
(``apply(..., rngs={"pain": key})``).  The level is a traced input, so one compiled
network serves every pain level; it is wrapped in ``stop_gradient`` (pain is felt, not
learned).  Where the level is 0 the activation is returned untouched (selected with
``jnp.where``), so a network at pain 0 gives output bit-identical to the same network
built without pain layers.

* :class:`PainNoise`: ``x + sigma * p * eps`` with ``eps ~ N(0, 1)``.
* :class:`PainDropout`: each unit zeroed with probability
  ``min(dropout_rate * p, dropout_max)``, survivors divided by the keep probability
  (flax's stock ``Dropout`` cannot do this: it tests its rate in Python).
* :class:`Pain`: one of the two (or nothing) chosen by the traced ``params.mode``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from pain_jax.pain.dynamics import DROPOUT, OFF, PainParams, drop_probability

PAIN_STREAM = "pain"


def _per_row(level: jax.Array, x: jax.Array) -> jax.Array:
    """Stop-gradient ``level`` (float32), trailing axes added to broadcast on ``x``."""
    level = jax.lax.stop_gradient(jnp.asarray(level, jnp.float32))
    if level.ndim > x.ndim or x.shape[: level.ndim] != level.shape:
        raise ValueError(
            f"pain level of shape {level.shape} must be a prefix of the activation "
            f"shape {x.shape} (one level per row) or a scalar"
        )
    return level.reshape(level.shape + (1,) * (x.ndim - level.ndim))


def pain_noise(key: jax.Array, x: jax.Array, level: jax.Array, sigma) -> jax.Array:
    """Additive Gaussian pain with std ``sigma * level``; ``x`` itself where std is 0."""
    std = jnp.asarray(sigma, jnp.float32) * _per_row(level, x)
    eps = jax.random.normal(key, x.shape, jnp.float32)
    return jnp.where(std > 0, x + (std * eps).astype(x.dtype), x)


def pain_dropout(key: jax.Array, x: jax.Array, level: jax.Array, rate, rate_max):
    """Dropout with the traced probability ``min(rate * level, rate_max)``.

    Survivors are divided by the keep probability, so the mean is unchanged.  Where
    the probability is 0 the input is returned untouched (mask all ones, scale 1).
    """
    level = _per_row(level, x)
    drop = drop_probability(level, PainParams(dropout_rate=rate, dropout_max=rate_max))
    keep_prob = 1.0 - drop
    # Double where: a (mis-configured) keep probability of 0 gives 0, never inf/nan.
    safe_keep = jnp.where(keep_prob > 0, keep_prob, 1.0)
    kept = jax.random.uniform(key, x.shape, jnp.float32) >= drop
    dropped = jnp.where(kept & (keep_prob > 0), x / safe_keep.astype(x.dtype), 0)
    return jnp.where(drop > 0, dropped.astype(x.dtype), x)


class PainNoise(nn.Module):
    """Additive Gaussian pain: ``x + params.sigma * level * eps`` (stream ``pain``)."""

    @nn.compact
    def __call__(self, x: jax.Array, level: jax.Array, params: PainParams) -> jax.Array:
        return pain_noise(self.make_rng(PAIN_STREAM), x, level, params.sigma)


class PainDropout(nn.Module):
    """Pain dropout: drop probability ``min(dropout_rate * level, dropout_max)``."""

    @nn.compact
    def __call__(self, x: jax.Array, level: jax.Array, params: PainParams) -> jax.Array:
        return pain_dropout(
            self.make_rng(PAIN_STREAM), x, level, params.dropout_rate, params.dropout_max
        )


class Pain(nn.Module):
    """Pain by the traced ``params.mode``: ``OFF`` (identity), ``NOISE`` or ``DROPOUT``.

    The mode goes through ``lax.switch``: with an unbatched mode only the chosen branch
    runs (pain off costs no random draws); under a ``vmap`` over pain params with a
    batched mode it becomes a select over all branches, with the same results.
    """

    @nn.compact
    def __call__(self, x: jax.Array, level: jax.Array, params: PainParams) -> jax.Array:
        key = self.make_rng(PAIN_STREAM)
        mode = jnp.clip(jnp.asarray(params.mode, jnp.int32), OFF, DROPOUT)
        _per_row(level, x)  # shape check at trace time, whatever the branch
        branches = [  # indexed by OFF, NOISE, DROPOUT
            lambda k, x, p: x,
            lambda k, x, p: pain_noise(k, x, p, params.sigma),
            lambda k, x, p: pain_dropout(
                k, x, p, params.dropout_rate, params.dropout_max
            ),
        ]
        return jax.lax.switch(mode, branches, key, x, level)
