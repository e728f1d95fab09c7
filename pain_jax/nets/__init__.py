"""Actor-critic networks (MLP, CNN, GRU) built from the pain layers."""

from pain_jax.nets.cnn import ActorCriticCNN
from pain_jax.nets.common import PainDenseStack, PolicyValueHeads, safe_div
from pain_jax.nets.gru import ActorCriticGRU
from pain_jax.nets.mlp import ActorCriticMLP

__all__ = [
    "ActorCriticCNN",
    "ActorCriticGRU",
    "ActorCriticMLP",
    "PainDenseStack",
    "PolicyValueHeads",
    "safe_div",
]
