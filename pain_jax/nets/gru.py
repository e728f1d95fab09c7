"""Recurrent actor-critic: dense embedding, a GRU cell, then actor and critic heads.

One call is one time step, so acting (one step at a time) and re-evaluating a stored
sequence (a ``lax.scan`` over steps, see :mod:`pain_jax.pain.acting`) run the same
computation with the same per-step pain keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from pain_jax.nets.common import PainDenseStack, PolicyValueHeads, orthogonal, pained
from pain_jax.pain.dynamics import PainParams
from pain_jax.pain.layers import Pain


class ActorCriticGRU(nn.Module):
    """GRU policy and value.

    Call: ``(carry, obs, reset, level, pain_params, action_mask=None) ->
    (carry, pi, value)`` with ``carry`` float32 ``(*B, hidden_size)``, ``obs`` float
    ``(*B, *obs_shape)`` (last ``obs_ndim`` axes flattened), ``reset`` bool ``B``:
    true where ``obs`` is the first observation of an episode (the carry is zeroed
    *before* the step; pass the previous step's ``done``, not this step's),
    ``level`` float32 ``B`` or ``()``.

    Layer indices for ``pain_layers``: 0 is the embedding (shared by actor and
    critic), ``1 ..`` the actor's hidden layers after the GRU.  The carry itself never
    gets pain (pain disturbs the step, not the memory directly).
    """

    num_actions: int
    hidden_size: int = 64
    embed: int = 64
    hidden: Sequence[int] = (64,)
    activation: str = "tanh"
    pain_layers: Sequence[int] | None = None
    pain_logits: bool = False
    pain_critic: bool = False
    obs_ndim: int = 1

    def initial_carry(self, batch_size: int) -> jnp.ndarray:
        """Zeros, float32 ``(batch_size, hidden_size)``."""
        return jnp.zeros((batch_size, self.hidden_size), jnp.float32)

    @nn.compact
    def __call__(self, carry, obs, reset, level, params: PainParams, action_mask=None):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        x = PainDenseStack((self.embed,), self.activation, feel_pain=False, name="embed")(
            x, level, params
        )
        if pained(0, self.pain_layers):
            x = Pain(name="pain_embed")(x, level, params)
        carry = jnp.where(jnp.asarray(reset)[..., None], jnp.zeros_like(carry), carry)
        # QR-free orthogonal init of the recurrent kernels (flax's default uses QR)
        cell = nn.GRUCell(
            self.hidden_size, recurrent_kernel_init=orthogonal(), name="gru"
        )
        carry, out = cell(carry, x)
        stack = dict(activation=self.activation, pain_layers=self.pain_layers, first=1)
        actor = PainDenseStack(self.hidden, **stack, name="actor")(out, level, params)
        critic = PainDenseStack(
            self.hidden, **stack, feel_pain=self.pain_critic, name="critic"
        )(out, level, params)
        heads = PolicyValueHeads(self.num_actions, self.pain_logits, name="heads")
        pi, value = heads(actor, critic, level, params, action_mask)
        return carry, pi, value
