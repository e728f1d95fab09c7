"""Pieces shared by the actor-critic networks: pain-aware dense stacks and heads.

Pain placement is configured per network by ``pain_layers`` (indices of the hidden
layers that feel pain, ``None`` = all of them) and ``pain_logits`` (noise/dropout on
the logits too).  Pain is applied after the activation of a chosen layer, and to the
logits before the action mask, so a masked action stays impossible under pain.
"""

from __future__ import annotations

from collections.abc import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pain_jax.pain.dynamics import PainParams
from pain_jax.pain.layers import Pain

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def orthonormal_columns(a: jax.Array) -> jax.Array:
    """The ``Q`` of the QR decomposition of ``a`` ``(n, m)``, ``n >= m``, with the
    diagonal of ``R`` positive: Gram-Schmidt, each column orthogonalised twice
    ("twice is enough" for float32), in plain XLA operations.

    Why not ``jnp.linalg.qr``: on CPU a *batched* QR (an init under ``vmap`` over
    agents or seeds) runs a LAPACK custom call that splits the batch over the XLA
    thread pool and waits for it; two such calls scheduled at once can wait on each
    other forever when the pool is small (seen on 2-core machines).
    """
    n, m = a.shape

    def column(j, q):
        v = a[:, j]
        done = (jnp.arange(m) < j).astype(a.dtype)  # only the columns built so far
        for _ in range(2):
            v = v - q @ (done * (q.T @ v))
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, m, column, jnp.zeros((n, m), a.dtype))


def orthogonal(scale: float = 1.0):
    """Orthogonal initializer (Saxe et al.): a uniformly random (Haar) orthogonal
    matrix times ``scale``, the same distribution as ``nn.initializers.orthogonal``
    (the last axis is the output axis, the others are flattened), built without a
    QR custom call (see :func:`orthonormal_columns`)."""

    def init(key, shape, dtype=jnp.float32):
        rows, cols = int(np.prod(shape[:-1])), int(shape[-1])
        big, small = max(rows, cols), min(rows, cols)
        q = orthonormal_columns(jax.random.normal(key, (big, small), jnp.float32))
        q = q if rows >= cols else q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init


def dense(features: int, scale: float = float(np.sqrt(2.0)), name=None) -> nn.Dense:
    """Dense layer with orthogonal init (scale ``sqrt(2)`` for hidden layers)."""
    return nn.Dense(features, kernel_init=orthogonal(scale), name=name)


def pained(index: int, pain_layers: Sequence[int] | None) -> bool:
    """Whether hidden layer ``index`` feels pain (``None`` means every layer)."""
    return pain_layers is None or index in tuple(pain_layers)


def activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; use one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class PainDenseStack(nn.Module):
    """Dense layers ``features``; hidden layer ``first + i`` feels pain if chosen.

    Shapes: ``x`` float ``(*B, D)``, ``level`` float ``B`` (or scalar) ->
    ``(*B, features[-1])``.
    """

    features: Sequence[int]
    activation: str = "tanh"
    pain_layers: Sequence[int] | None = None
    first: int = 0  # global index of this stack's first layer (for pain_layers)
    feel_pain: bool = True

    @nn.compact
    def __call__(self, x, level, params: PainParams):
        act = activation(self.activation)
        for i, f in enumerate(self.features):
            x = act(dense(f, name=f"dense_{i}")(x))
            if self.feel_pain and pained(self.first + i, self.pain_layers):
                x = Pain(name=f"pain_{i}")(x, level, params)
        return x


class PolicyValueHeads(nn.Module):
    """Categorical policy head (distrax) and scalar value head.

    Shapes: ``actor_x`` ``(*B, H)``, ``critic_x`` ``(*B, H')``, ``action_mask`` bool
    ``(*B, num_actions)`` or ``None`` -> ``(distrax.Categorical over (*B,), value
    float32 (*B,))``.  Masked actions get a ``-inf`` logit (probability exactly 0).
    """

    num_actions: int
    pain_logits: bool = False

    @nn.compact
    def __call__(self, actor_x, critic_x, level, params, action_mask=None):
        logits = dense(self.num_actions, 0.01, name="logits")(actor_x)
        if self.pain_logits:
            logits = Pain(name="pain_logits")(logits, level, params)
        if action_mask is not None:
            logits = jnp.where(action_mask, logits, -jnp.inf)
        value = dense(1, 1.0, name="value")(critic_x)[..., 0]
        return distrax.Categorical(logits=logits), value


def safe_div(num: jax.Array, den: jax.Array, default: float = 0.0) -> jax.Array:
    """``num / den`` where ``den != 0`` else ``default``, with finite gradients.

    The double ``where`` keeps the untaken branch from producing inf/nan in the
    backward pass (``d(1/den)`` at ``den = 0``).
    """
    ok = den != 0
    safe_den = jnp.where(ok, den, 1.0)
    return jnp.where(ok, num / safe_den, default)
