"""Environments: the base API, the registry and the built-in games."""

from pain_jax.envs.api import Environment, EnvParams
from pain_jax.envs.registry import make, register, registered_names
from pain_jax.envs.spaces import Box, Discrete
from pain_jax.envs.vector import reset_batch, step_batch

# Built-in environments register themselves on import.
from pain_jax.envs import builtin  # noqa: E402,F401  isort: skip

__all__ = [
    "Box",
    "Discrete",
    "EnvParams",
    "Environment",
    "make",
    "register",
    "registered_names",
    "reset_batch",
    "step_batch",
]
