"""Pain: dynamics, the flax layers that inject it, acting under it, and the wrapper
that carries it through an environment (see ``shared/docs/mission.md``)."""

from pain_jax.pain.acting import (
    Acted,
    act,
    act_recurrent,
    evaluate,
    evaluate_recurrent,
    split_keys,
)
from pain_jax.pain.dynamics import (
    DROPOUT,
    INVERSE,
    LINEAR,
    NOISE,
    OFF,
    PainParams,
    PainState,
    drop_probability,
    instant_pain,
    pain_init,
    pain_trace,
    pain_update,
    validate_pain_params,
)
from pain_jax.pain.layers import Pain, PainDropout, PainNoise, pain_dropout, pain_noise
from pain_jax.pain.wrapper import PainEnvParams, PainEnvState, PainWrapper

__all__ = [
    "DROPOUT",
    "INVERSE",
    "LINEAR",
    "NOISE",
    "OFF",
    "Acted",
    "Pain",
    "PainDropout",
    "PainEnvParams",
    "PainEnvState",
    "PainNoise",
    "PainParams",
    "PainState",
    "PainWrapper",
    "act",
    "act_recurrent",
    "drop_probability",
    "evaluate",
    "evaluate_recurrent",
    "instant_pain",
    "pain_dropout",
    "pain_init",
    "pain_noise",
    "pain_trace",
    "pain_update",
    "split_keys",
    "validate_pain_params",
]
