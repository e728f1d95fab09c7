"""Differentiable learning steps built on optax.

A learner's update is the pure function ``(params, opt_state, objective) ->
(params, opt_state)``: it takes one optax step *up* the objective (a callable
``params -> scalar`` to maximise).  Because it is plain JAX, the result is
differentiable with respect to anything the objective closes over, e.g. another
agent's parameters: ``jax.grad(lambda mine: V1(mine, step(theirs, s, lambda t:
V2(mine, t))[0]))`` differentiates through the opponent's learning step.

optax's ``sgd``, ``adam`` etc. are pure jnp arithmetic, so unrolling several steps and
differentiating through them works for any of them (``adam``'s ``sqrt`` has a
finite derivative away from a zero second moment).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

Objective = Callable[[Any], jax.Array]


def ascent_step(optimizer: optax.GradientTransformation):
    """Build ``step(params, opt_state, objective) -> (params, opt_state)``.

    ``objective(params)`` is a scalar to *maximise*; the step feeds ``-grad`` to the
    optax transformation (optax minimises).
    """

    def step(params, opt_state, objective: Objective):
        grads = jax.grad(objective)(params)
        return apply_direction(optimizer, params, opt_state, grads)

    return step


def apply_direction(
    optimizer: optax.GradientTransformation, params, opt_state, direction
):
    """One optax step along an ascent ``direction`` (same pytree as ``params``).

    For update rules that are not the gradient of a single objective (SOS, or a
    direction computed elsewhere).
    """
    neg = jax.tree.map(lambda d: -d, direction)
    updates, opt_state = optimizer.update(neg, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def unrolled(optimizer: optax.GradientTransformation, num_steps: int):
    """``k`` ascent steps from a fresh optimiser state, differentiable end to end.

    Returns ``run(params, objective) -> params`` (a Python loop: ``num_steps`` is a
    small static number, and unrolling keeps higher-order derivatives simple).
    """
    step = ascent_step(optimizer)

    def run(params, objective: Objective):
        state = optimizer.init(params)
        for _ in range(num_steps):
            params, state = step(params, state, objective)
        return params

    return run
