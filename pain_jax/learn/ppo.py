"""Policy losses and the minibatch update shared by every learner.

The update of ``A`` independent learners is one ``vmap`` over the agent axis of a
per-agent loss: agent ``i``'s variables are trained on agent ``i``'s rows only.
Algorithms differ in the *policy advantage* they feed in (independent PPO: the
agent's own GAE advantage; Advantage Alignment: the modified advantage of
:mod:`pain_jax.learn.advantage_alignment`) and in the policy loss:

* :func:`clipped_policy_loss`: PPO's clipped surrogate (proximal);
* :func:`policy_gradient_loss`: the plain policy gradient ``-A log pi`` (its
  gradient at the acting parameters is the advantage policy gradient).

Minibatches are drawn over the environment axis with the whole time axis kept, so
recurrent networks re-run each stored sequence from its stored initial carry, with
the stored reset flags, pain levels and pain keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from pain_jax.learn.rollout import Policy, agent_axes
from pain_jax.pain.dynamics import PainParams

PolicyLoss = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


def clipped_policy_loss(log_prob, old_log_prob, advantage, clip_eps):
    """PPO's clipped surrogate, to minimise.

    Args: float32 arrays of one shape (any), ``clip_eps`` a scalar.
    Returns ``(loss (), stats)`` with ``approx_kl`` (``mean((r - 1) - log r)``, >= 0)
    and ``clip_frac`` (share of rows whose ratio left ``[1 - eps, 1 + eps]``).
    """
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = -jnp.mean(jnp.minimum(ratio * advantage, clipped * advantage))
    return loss, _ratio_stats(log_ratio, ratio, clip_eps)


def policy_gradient_loss(log_prob, old_log_prob, advantage, clip_eps):
    """The plain policy-gradient loss ``-mean(A * log pi(a))`` (``old_log_prob`` and
    ``clip_eps`` only feed the statistics)."""
    log_ratio = log_prob - old_log_prob
    loss = -jnp.mean(advantage * log_prob)
    return loss, _ratio_stats(log_ratio, jnp.exp(log_ratio), clip_eps)


def _ratio_stats(log_ratio, ratio, clip_eps):
    return {
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        "clip_frac": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
    }


def value_loss(value, target):
    """``0.5 * mean((V - target)^2)``."""
    return 0.5 * jnp.mean(jnp.square(value - target))


def normalize(x, eps: float = 1e-8):
    """``(x - mean) / (std + eps)`` over all entries."""
    return (x - x.mean()) / (x.std() + eps)


@struct.dataclass
class LossParams:
    """Loss coefficients (float scalars; pytree leaves, so they may be traced)."""

    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.01


@struct.dataclass
class AgentBatch:
    """One agent's share of a rollout (time first, environments second).

    Attributes:
      obs: float32 ``(T, E, *O)``; action int32 ``(T, E)``; reset bool ``(T, E)``.
      log_prob: float32 ``(T, E)``, as acted; pain_level float32 ``(T, E)``;
      pain_key: uint32 ``(T, E, 2)``, recorded pain key data.
      advantage: float32 ``(T, E)``, the policy advantage of the algorithm.
      target: float32 ``(T, E)``, the critic's regression target.
      carry: float32 ``(E, H)``, the recurrent carry before ``obs[0]``.
    """

    obs: jax.Array
    action: jax.Array
    reset: jax.Array
    log_prob: jax.Array
    pain_level: jax.Array
    pain_key: jax.Array
    advantage: jax.Array
    target: jax.Array
    carry: jax.Array

    def take_envs(self, idx: jax.Array) -> AgentBatch:
        """The rows of environments ``idx`` (int ``(E',)``)."""
        fields = [f.name for f in dataclasses.fields(self) if f.name != "carry"]
        timed = {k: jnp.take(getattr(self, k), idx, axis=1) for k in fields}
        return AgentBatch(**timed, carry=jnp.take(self.carry, idx, axis=0))


def agent_loss(
    variables: Any,
    batch: AgentBatch,
    pain: PainParams,
    coefs: LossParams,
    policy: Policy,
    policy_loss: PolicyLoss,
    normalize_advantage: bool,
):
    """Scalar loss of one agent on one minibatch, and its statistics."""
    log_prob, entropy, value = policy.evaluate(
        variables,
        batch.carry,
        batch.obs,
        batch.reset,
        batch.action,
        batch.pain_level,
        batch.pain_key,
        pain,
    )
    advantage = normalize(batch.advantage) if normalize_advantage else batch.advantage
    pg, stats = policy_loss(log_prob, batch.log_prob, advantage, coefs.clip_eps)
    vl = value_loss(value, batch.target)
    ent = jnp.mean(entropy)
    total = pg + coefs.vf_coef * vl - coefs.ent_coef * ent
    stats = {
        **stats,
        "policy_loss": pg,
        "value_loss": vl,
        "entropy": ent,
        "loss": total,
        "ratio_error": jnp.max(jnp.abs(jnp.exp(log_prob - batch.log_prob) - 1.0)),
    }
    return total, stats


def per_agent_loss(losses: tuple[PolicyLoss, ...]) -> tuple[PolicyLoss, jax.Array]:
    """One policy loss for agents that learn with different losses.

    ``losses`` holds one :data:`PolicyLoss` per agent.  Returns ``(loss, index)``:
    ``loss(log_prob, old_log_prob, advantage, clip_eps, index)`` applies the agent's
    own loss (``lax.switch`` on ``index``, int32 ``()``, which becomes a select of
    the cheap surrogates under the agent ``vmap``) and ``index`` int32 ``(A,)`` maps
    each agent to its loss.
    """
    unique = list(dict.fromkeys(losses))
    index = jnp.asarray([unique.index(f) for f in losses], jnp.int32)

    def loss(log_prob, old_log_prob, advantage, clip_eps, which):
        if len(unique) == 1:
            return unique[0](log_prob, old_log_prob, advantage, clip_eps)
        return jax.lax.switch(which, unique, log_prob, old_log_prob, advantage, clip_eps)

    return loss, index


def make_update(
    policy: Policy,
    optimizer: optax.GradientTransformation,
    policy_loss: PolicyLoss | tuple[PolicyLoss, ...],
    num_epochs: int,
    num_minibatches: int,
    normalize_advantage: bool = True,
):
    """Build ``update(variables, opt_state, batch, key, pain, coefs) ->
    (variables, opt_state, stats)``.

    ``policy_loss`` is one loss for every agent, or a tuple with one loss per agent
    (e.g. an Advantage Alignment learner in the policy-gradient form against a PPO
    learner).

    ``variables``, ``opt_state``, ``batch`` (an :class:`AgentBatch` with a leading
    agent axis) are agent-stacked, ``pain`` fields are scalars or ``(A,)``; ``key``
    is split into one permutation key per epoch (shared by all agents).  ``stats``
    holds the mean over epochs and minibatches of each loss statistic, float32 ``(A,)``
    (``ratio_error`` is ``max |pi / pi_old - 1|`` of a minibatch), and
    ``initial_ratio_error`` ``(A,)``: that of the first minibatch, taken before any
    step, which is 0 up to rounding when the stored pain keys and levels reproduce
    the behaviour.
    """
    loss = jax.value_and_grad(agent_loss, has_aux=True)
    losses = policy_loss if isinstance(policy_loss, tuple) else (policy_loss,)
    switched, loss_index = per_agent_loss(losses)
    one_loss = len(losses) == 1

    def agent_step(variables, opt_state, batch, pain, coefs, which):
        chosen = lambda *a: switched(*a, which)  # noqa: E731
        (_, stats), grads = loss(
            variables, batch, pain, coefs, policy, chosen, normalize_advantage
        )
        updates, opt_state = optimizer.update(grads, opt_state, variables)
        stats["grad_norm"] = optax.global_norm(grads)
        return optax.apply_updates(variables, updates), opt_state, stats

    def all_agents(variables, opt_state, batch, pain, coefs):
        num_agents = batch.carry.shape[0]
        if not one_loss and loss_index.shape[0] != num_agents:
            raise ValueError(
                f"policy_loss: {loss_index.shape[0]} per-agent losses for "
                f"{num_agents} agents"
            )
        which = jnp.zeros((num_agents,), jnp.int32) if one_loss else loss_index
        axes = (0, 0, 0, agent_axes(pain), None, 0)
        return jax.vmap(agent_step, in_axes=axes)(
            variables, opt_state, batch, pain, coefs, which
        )

    return minibatch_epochs(all_agents, num_epochs, num_minibatches)


def minibatch_epochs(step, num_epochs: int, num_minibatches: int):
    """The epochs-of-minibatches loop every learner shares.

    ``step(variables, opt_state, minibatch, pain, coefs) -> (variables, opt_state,
    stats)`` learns on one agent-stacked minibatch.  Returns ``update(variables,
    opt_state, batch, key, pain, coefs) -> (variables, opt_state, stats)``: ``key``
    gives one permutation of the environments per epoch (shared by all agents); stats
    are averaged over epochs and minibatches, plus ``initial_ratio_error``, the first
    minibatch's ``ratio_error`` taken before any step.
    """

    def update(variables, opt_state, batch: AgentBatch, key, pain, coefs: LossParams):
        num_envs = batch.carry.shape[1]
        size = num_envs // num_minibatches

        def epoch(carry, epoch_key):
            perm = jax.random.permutation(epoch_key, num_envs)
            chunks = perm[: size * num_minibatches].reshape(num_minibatches, size)

            def minibatch(carry, idx):
                variables, opt_state = carry
                mb = jax.vmap(lambda b: b.take_envs(idx))(batch)
                variables, opt_state, stats = step(variables, opt_state, mb, pain, coefs)
                return (variables, opt_state), stats

            return jax.lax.scan(minibatch, carry, chunks)

        (variables, opt_state), stats = jax.lax.scan(
            epoch, (variables, opt_state), jax.random.split(key, num_epochs)
        )
        # Before any step the learner must see the behaviour exactly (same pain keys
        # and levels): the first minibatch's ratio error is a health check.
        first_error = stats["ratio_error"][0, 0]
        stats = jax.tree.map(lambda s: s.mean(axis=(0, 1)), stats)
        return variables, opt_state, {**stats, "initial_ratio_error": first_error}

    return update
