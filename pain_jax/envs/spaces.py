"""Action and observation spaces that state the exact shape and dtype of what an
environment returns (tests check that they do not lie)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Discrete:
    """Integers ``0 .. n-1``; one value per agent, dtype int32, shape ``()``."""

    n: int
    shape: tuple = ()
    dtype: jnp.dtype = jnp.int32

    def sample(self, key: jax.Array, shape: tuple = ()) -> jax.Array:
        return jax.random.randint(key, shape, 0, self.n, dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.all((x >= 0) & (x < self.n)) & (x.dtype == self.dtype)


@dataclass(frozen=True)
class Box:
    """Real (or integer) arrays in ``[low, high]`` with a fixed shape and dtype."""

    low: float
    high: float
    shape: tuple
    dtype: jnp.dtype = jnp.float32

    def sample(self, key: jax.Array, shape: tuple = ()) -> jax.Array:
        return jax.random.uniform(
            key, shape + self.shape, self.dtype, self.low, self.high
        )

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        ok_shape = x.shape[x.ndim - len(self.shape) :] == self.shape
        return jnp.all((x >= self.low) & (x <= self.high)) & ok_shape
