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

Random numbers (why not ``jax.random``): drawing them was most of the cost of pain
(``jax.random.normal`` on a 4096x64 tensor took longer than a 64-wide dense layer on
CPU).  Here every element gets a 16-bit uniform ``u`` from counter-mode Threefry-2x32
(:mod:`pain_jax.prng`, the same hash as ``jax.random``), four per hash block, and

* dropout drops a unit when ``u < round(drop * 2**16)``: the drop probability is
  ``drop`` rounded to a multiple of ``2**-16`` (error at most ``7.7e-6``);
* noise is ``eps = T[u]``, ``T`` the ``2**16`` normal quantiles at ``(k + 0.5) / 2**16``
  scaled to unit variance: a Gaussian quantised to 65536 equally likely values (CDF
  error at most ``2**-17``), tails cut at ``|eps| <= 4.32`` (a true normal goes past
  that with probability ``1.5e-5``).

The elements of ``x`` (row-major over ``(*B, C)``, ``C`` the last axis) get the 16-bit
halves of block ``(r, j)``, ``j < ceil(C / 4)``, at columns ``j``, ``j + q``, ``j + 2q``
and ``j + 3q`` (``q = ceil(C / 4)``); each layer gets its own key from
``make_rng("pain")``, and under ``vmap`` each row its own key, so no two elements,
layers, rows or steps share a draw.
"""

from __future__ import annotations

import functools
import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pain_jax.pain.dynamics import DROPOUT, OFF, PainParams, drop_probability
from pain_jax.prng import counter_blocks, pack_words, unpack_words

PAIN_STREAM = "pain"
UNIFORM_BITS = 16  # bits of each uniform: 4 uniforms per 64-bit Threefry block
_LEVELS = 1 << UNIFORM_BITS


@functools.cache
def gaussian_table() -> np.ndarray:
    """float32 ``(2**16,)``: normal quantiles at ``(k + 0.5) / 2**16``, scaled to unit
    variance (the bare quantiles have variance ``1 - 2e-5``).  Symmetric, increasing."""
    normal = statistics.NormalDist()
    table = np.array([normal.inv_cdf((k + 0.5) / _LEVELS) for k in range(_LEVELS)])
    return (table / np.sqrt(np.mean(table**2))).astype(np.float32)


def _per_row(level: jax.Array, x: jax.Array) -> jax.Array:
    """Stop-gradient ``level`` (float32), trailing axes added to broadcast on ``x``."""
    level = jax.lax.stop_gradient(jnp.asarray(level, jnp.float32))
    if level.ndim > x.ndim or x.shape[: level.ndim] != level.shape:
        raise ValueError(
            f"pain level of shape {level.shape} must be a prefix of the activation "
            f"shape {x.shape} (one level per row) or a scalar"
        )
    return level.reshape(level.shape + (1,) * (x.ndim - level.ndim))


def pain_uniforms(key: jax.Array, shape: tuple[int, ...], draw=True) -> jax.Array:
    """uint32 array of ``shape`` (at least 1-D) with independent uniform values in
    ``[0, 2**16)``: the four 16-bit halves of one Threefry block per 4 elements.

    ``draw`` (bool ``()``, may be traced): when false nothing is hashed and the values
    are all 0.  The hash runs inside a ``lax.cond``, whose output XLA materialises:
    without that boundary XLA fuses the hash into each of the four users of a block
    and computes it four times.
    """
    *lead, cols = shape
    quarter = -(-cols // 4)
    blocks = (*lead, quarter)
    words = jax.lax.cond(
        jnp.asarray(draw, bool),
        lambda: pack_words(*counter_blocks(key, blocks)),
        lambda: jnp.zeros(blocks, jnp.complex64),
    )
    hi, lo = unpack_words(words)
    low = jnp.uint32(_LEVELS - 1)
    halves = (hi >> UNIFORM_BITS, hi & low, lo >> UNIFORM_BITS, lo & low)
    return jnp.concatenate(halves, axis=-1)[..., :cols]


def _noise(u, x, std):
    # u < 2**16 by construction: no bounds clamp in the gather.
    eps = jnp.asarray(gaussian_table()).at[u].get(mode="promise_in_bounds")
    return jnp.where(std > 0, x + (std * eps).astype(x.dtype), x)


def _dropout(u, x, drop):
    keep_prob = 1.0 - drop
    # Double where: a (mis-configured) keep probability of 0 gives 0, never inf/nan.
    safe_keep = jnp.where(keep_prob > 0, keep_prob, 1.0)
    threshold = jnp.round(drop * _LEVELS).astype(jnp.uint32)
    kept = (u >= threshold) & (keep_prob > 0)
    dropped = jnp.where(kept, x / safe_keep.astype(x.dtype), 0)
    return jnp.where(drop > 0, dropped.astype(x.dtype), x)


def _at_least_1d(x):
    return x.reshape(1) if x.ndim == 0 else x


def pain_noise(key: jax.Array, x: jax.Array, level: jax.Array, sigma) -> jax.Array:
    """Additive Gaussian pain with std ``sigma * level``; ``x`` itself where std is 0."""
    std = jnp.asarray(sigma, jnp.float32) * _per_row(level, x)
    u = pain_uniforms(key, _at_least_1d(x).shape, jnp.any(std > 0)).reshape(x.shape)
    return _noise(u, x, std)


def pain_dropout(key: jax.Array, x: jax.Array, level: jax.Array, rate, rate_max):
    """Dropout with the traced probability ``min(rate * level, rate_max)``.

    Survivors are divided by the keep probability, so the mean is unchanged.  Where
    the probability is 0 the input is returned untouched (mask all ones, scale 1).
    """
    level = _per_row(level, x)
    drop = drop_probability(level, PainParams(dropout_rate=rate, dropout_max=rate_max))
    u = pain_uniforms(key, _at_least_1d(x).shape, jnp.any(drop > 0)).reshape(x.shape)
    return _dropout(u, x, drop)


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

    Both modes use the same uniforms (same key, same counters: one draw per
    element), so a mode costs one hash per four elements.  With an unbatched mode
    (one mode for the whole batch, the usual case, even under a ``vmap`` over rows)
    only the chosen branch of a ``lax.switch`` runs: mode ``OFF`` hashes nothing.
    Under a ``vmap`` over pain params with a batched mode the switch becomes a
    select over all branches, with the same results.  Noise and dropout give the
    same values as :class:`PainNoise` and :class:`PainDropout` with the same key.
    """

    @nn.compact
    def __call__(self, x: jax.Array, level: jax.Array, params: PainParams) -> jax.Array:
        key = self.make_rng(PAIN_STREAM)
        mode = jnp.clip(jnp.asarray(params.mode, jnp.int32), OFF, DROPOUT)
        level = _per_row(level, x)
        std = jnp.asarray(params.sigma, jnp.float32) * level
        drop = drop_probability(level, params)

        def uniforms():  # inside a branch, so mode OFF draws nothing
            return pain_uniforms(key, _at_least_1d(x).shape, mode != OFF).reshape(x.shape)

        branches = [  # indexed by OFF, NOISE, DROPOUT
            lambda x: x,
            lambda x: _noise(uniforms(), x, std),
            lambda x: _dropout(uniforms(), x, drop),
        ]
        return jax.lax.switch(mode, branches, x)
