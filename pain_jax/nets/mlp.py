"""Actor-critic MLP for flat observations."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn

from pain_jax.nets.common import PainDenseStack, PolicyValueHeads
from pain_jax.pain.dynamics import PainParams


class ActorCriticMLP(nn.Module):
    """Separate actor and critic MLPs; pain on the chosen actor layers.

    Call: ``(obs, level, pain_params, action_mask=None) -> (pi, value)`` with ``obs``
    float ``(*B, *obs_shape)`` (the last ``obs_ndim`` axes are flattened), ``level``
    float32 ``B`` or ``()``, ``pi`` a ``distrax.Categorical`` over ``(*B,)`` and
    ``value`` float32 ``(*B,)``.  RNG stream ``"pain"`` is needed when any layer
    feels pain.

    Attributes:
      num_actions: size of the discrete action space.
      hidden: widths of the hidden layers (actor and critic alike).
      activation: ``"tanh"`` or ``"relu"``.
      pain_layers: indices of actor hidden layers that feel pain (``None``: all).
      pain_logits: whether the logits feel pain too.
      pain_critic: whether the critic's hidden layers (same indices) feel pain.
      obs_ndim: number of trailing observation axes to flatten.
    """

    num_actions: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    pain_layers: Sequence[int] | None = None
    pain_logits: bool = False
    pain_critic: bool = False
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs, level, params: PainParams, action_mask=None):
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,))
        stack = dict(activation=self.activation, pain_layers=self.pain_layers)
        actor = PainDenseStack(self.hidden, **stack, name="actor")(x, level, params)
        critic = PainDenseStack(
            self.hidden, **stack, feel_pain=self.pain_critic, name="critic"
        )(x, level, params)
        heads = PolicyValueHeads(self.num_actions, self.pain_logits, name="heads")
        return heads(actor, critic, level, params, action_mask)
