"""Actor-critic CNN for grid observations (channels last)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import numpy as np

from pain_jax.nets.common import (
    PainDenseStack,
    PolicyValueHeads,
    activation,
    orthogonal,
    pained,
)
from pain_jax.pain.dynamics import PainParams
from pain_jax.pain.layers import Pain


class PainConvTorso(nn.Module):
    """3x3 SAME convolutions, then flatten and dense layers.

    Layer indices for ``pain_layers``: convolutions ``0 .. len(conv)-1`` (pain per
    unit of the feature map), then the dense layers.
    """

    conv: Sequence[int]
    dense: Sequence[int]
    activation: str
    pain_layers: Sequence[int] | None
    feel_pain: bool

    @nn.compact
    def __call__(self, x, level, params):
        act = activation(self.activation)
        init = orthogonal(float(np.sqrt(2.0)))
        for i, f in enumerate(self.conv):
            x = act(nn.Conv(f, (3, 3), padding="SAME", kernel_init=init)(x))
            if self.feel_pain and pained(i, self.pain_layers):
                x = Pain(name=f"pain_conv_{i}")(x, level, params)
        x = x.reshape(x.shape[:-3] + (-1,))
        return PainDenseStack(
            self.dense,
            self.activation,
            self.pain_layers,
            first=len(self.conv),
            feel_pain=self.feel_pain,
            name="dense",
        )(x, level, params)


class ActorCriticCNN(nn.Module):
    """Separate actor and critic CNNs; pain on the chosen actor layers.

    Call: ``(obs, level, pain_params, action_mask=None) -> (pi, value)`` with ``obs``
    float ``(*B, H, W, C)``, ``level`` float32 ``B`` or ``()``, ``pi`` a
    ``distrax.Categorical`` over ``(*B,)``, ``value`` float32 ``(*B,)``.
    """

    num_actions: int
    conv: Sequence[int] = (16, 16)
    hidden: Sequence[int] = (64,)
    activation: str = "relu"
    pain_layers: Sequence[int] | None = None
    pain_logits: bool = False
    pain_critic: bool = False

    @nn.compact
    def __call__(self, obs, level, params: PainParams, action_mask=None):
        torso = dict(
            conv=self.conv,
            dense=self.hidden,
            activation=self.activation,
            pain_layers=self.pain_layers,
        )
        actor = PainConvTorso(**torso, feel_pain=True, name="actor")(obs, level, params)
        critic = PainConvTorso(**torso, feel_pain=self.pain_critic, name="critic")(
            obs, level, params
        )
        heads = PolicyValueHeads(self.num_actions, self.pain_logits, name="heads")
        return heads(actor, critic, level, params, action_mask)
