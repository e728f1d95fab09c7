"""Moving between the ``(envs, agents, ...)`` layout of rollouts and the flat
``(envs * agents, ...)`` rows networks are applied to.

Row ``e * num_agents + a`` is agent ``a`` of environment ``e``; both directions use
the same (C-order) rule, so actor and critic rows can never be misaligned.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def flatten_agents(tree, env_axis: int = 0):
    """Merge axes ``env_axis`` (E) and ``env_axis + 1`` (A) into one ``E * A`` axis."""

    def f(x):
        x = jnp.asarray(x)
        s = x.shape
        return x.reshape(
            s[:env_axis] + (s[env_axis] * s[env_axis + 1],) + s[env_axis + 2 :]
        )

    return jax.tree.map(f, tree)


def unflatten_agents(tree, num_agents: int, env_axis: int = 0):
    """Inverse of :func:`flatten_agents`: split axis ``env_axis`` into ``(E, A)``."""

    def f(x):
        x = jnp.asarray(x)
        s = x.shape
        return x.reshape(s[:env_axis] + (-1, num_agents) + s[env_axis + 1 :])

    return jax.tree.map(f, tree)


def broadcast_env_flag(flag: jax.Array, num_agents: int) -> jax.Array:
    """Per-environment flag ``(E,)`` -> per-row flag ``(E * A,)`` (e.g. ``done``)."""
    return jnp.repeat(flag, num_agents, axis=-1)


def reset_rows(carry: jax.Array, done_rows: jax.Array) -> jax.Array:
    """Zero the recurrent carry ``(E * A, H)`` of the rows whose episode ended."""
    return jnp.where(done_rows[:, None], jnp.zeros_like(carry), carry)
