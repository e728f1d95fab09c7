"""Learning: estimators, DiCE, batching, optimisers and the learners."""

from pain_jax.learn.config import TrainConfig

__all__ = ["TrainConfig"]
