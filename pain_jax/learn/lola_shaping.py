"""LOLA-DiCE for neural policies in the shared loop (``algorithm="lola_dice"``).

Foerster et al. (2018): agent ``i`` maximises its return *after* a look-ahead
learning step of every opponent ``j``, differentiating through that step::

    theta_j' = theta_j + eta * grad_j DiCE_j(theta_i, theta_j)      (k times)
    theta_i  <- Adam step up  DiCE_i(theta_i, theta_j'(theta_i))

Choices made here (documented deviations from the original):

* **One rollout per update, reused.**  The original re-samples a rollout for every
  inner step and for the outer objective.  Here the batch of the shared loop's
  rollout (sampled with the current parameters, sampling never differentiated) is
  reused for the ``k`` inner steps and for the outer objective; the log-probs of its
  stored actions are re-evaluated with :meth:`Policy.evaluate` (stored carry, reset
  flags, pain levels and pain keys replayed, so every network and pain mode works).
* **Importance weights instead of the bare magic box.**  Off the behaviour
  parameters (the opponents after a look-ahead step, the learner after its first
  epoch) the batch is off-policy, so the magic box ``exp(W - stop(W))`` is replaced
  by the cumulative importance weight ``w_t = exp(W_t - W_t^beh)`` with ``W`` the
  log-probs of *all* agents' actions summed since the episode start (restarting at
  every reset flag) and ``W^beh`` the stored acting log-probs.  At the behaviour
  parameters ``w`` equals the magic box in value and in derivatives of every order,
  so with ``k = 0`` (or ``eta = 0``) the update is the naive DiCE policy gradient;
  away from them the objective's value is a genuine importance-sampled surrogate,
  which is what the finite-difference test checks.
* **Baseline form** of :func:`pain_jax.learn.dice.dice_objective_baseline`:
  ``mean_e sum_t gamma^c_t A_t (w_t - w_{t-1})`` with ``A`` the agent's GAE advantage
  from its own critic, *detached* (C17), ``c_t`` the steps since the episode start
  (or the rollout start) and ``w_{t-1} = 1`` at an episode start.  Truncation and
  termination are therefore handled exactly as by GAE (bootstrap from the critic of
  the true final observation at truncation, none at termination, nothing crosses
  an episode boundary).  As in the paper the objective sums over the steps of a
  rollout and averages over environments, so ``lola_inner_lr`` has the paper's
  scale for rollouts of one episode (its effect grows with ``num_steps``).
* **Inner step**: plain gradient ascent with ``lola_inner_lr`` on the opponent's own
  DiCE objective (the opponent is modelled as a naive learner, whatever it really
  learns with); with several opponents all take their step together.
* **Outer step**: the loop's optimiser (clip + Adam) on ``-DiCE_i + vf_coef *
  value_loss - ent_coef * entropy`` over ``num_epochs`` x ``num_minibatches``
  minibatches of environments, like PPO; the critic is trained by the value loss.

Shapes: ``A`` agents, ``T`` steps, ``E`` environments (of a minibatch).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from pain_jax.learn.ppo import (
    AgentBatch,
    minibatch_epochs,
    normalize,
    value_loss,
)
from pain_jax.learn.rollout import Policy, agent_axes
from pain_jax.pain.dynamics import PainParams


def episode_cumsum(x: jax.Array, reset: jax.Array) -> jax.Array:
    """``W_t = x_t + (W_{t-1} unless reset_t)``: sums restarting at every episode
    start.  ``x`` float ``(T, ...)``, ``reset`` bool broadcastable to it."""
    reset = jnp.broadcast_to(reset, x.shape)

    def step(total, xs):
        value, first = xs
        total = jnp.where(first, 0.0, total) + value
        return total, total

    return jax.lax.scan(step, jnp.zeros_like(x[0]), (x, reset))[1]


def steps_in_episode(reset: jax.Array) -> jax.Array:
    """``c_t``: steps since the episode start (or since ``t = 0``), int32 ``(T, ...)``."""

    def step(count, first):
        count = jnp.where(first, 0, count + 1)
        return count, count

    init = jnp.full(reset.shape[1:], -1, jnp.int32)
    return jax.lax.scan(step, init, reset)[1]


def weighted_dice(
    log_ratio: jax.Array, advantage: jax.Array, reset: jax.Array, gamma
) -> jax.Array:
    """The importance-weighted DiCE baseline objective, a scalar to maximise.

    Args:
      log_ratio: float ``(T, E)``, summed over the agents whose actions the
        objective depends on: ``log pi(a_t) - log pi_beh(a_t)`` (the behaviour term
        held constant).
      advantage: float ``(T, E)``, detached here (no gradient reaches the critic).
      reset: bool ``(T, E)``, first step of an episode.
      gamma: discount.

    Returns ``mean_e sum_t gamma^c_t A_t (exp(W_t) - exp(W_t - log_ratio_t))``.
    """
    advantage = jax.lax.stop_gradient(advantage)
    w = episode_cumsum(log_ratio, reset)
    disc = jnp.asarray(gamma, log_ratio.dtype) ** steps_in_episode(reset)
    terms = disc * advantage * (jnp.exp(w) - jnp.exp(w - log_ratio))
    return jnp.mean(jnp.sum(terms, axis=0))


def _set_row(stacked, i, row):
    return jax.tree.map(lambda s, r: s.at[i].set(r), stacked, row)


def _row(stacked, i):
    return jax.tree.map(lambda s: s[i], stacked)


def make_evaluate_all(policy: Policy):
    """``evaluate_all(variables (A, ...), batch, pain) -> (log_prob, entropy,
    value)``, each float ``(A, T, E)``: every agent's re-evaluation of its stored
    rows under its own variables."""

    def one(variables, b: AgentBatch, pain):
        return policy.evaluate(
            variables, b.carry, b.obs, b.reset, b.action, b.pain_level, b.pain_key, pain
        )

    def evaluate_all(variables, batch: AgentBatch, pain: PainParams):
        return jax.vmap(one, in_axes=(0, 0, agent_axes(pain)))(variables, batch, pain)

    return evaluate_all


def make_objectives(policy: Policy, gamma, inner_lr, lookahead: int):
    """Build ``(objectives, look_ahead, shaped_objective)``.

    * ``objectives(variables, batch, pain, advantage) -> ((A,), aux)``: every
      agent's :func:`weighted_dice` with the log-ratios of all agents' actions.
    * ``look_ahead(variables, i, batch, pain, advantage) -> variables``: ``lookahead``
      simultaneous ascent steps of every agent but ``i`` on its own objective
      (row ``i`` unchanged, differentiable with respect to all rows).
    * ``shaped_objective(theta_i, variables, i, batch, pain, advantage) -> (J, aux)``:
      agent ``i``'s objective at ``theta_i`` against the looked-ahead opponents.

    ``advantage`` is float ``(A, T, E)``; ``aux`` holds ``(log_prob, entropy,
    value)`` of the evaluation, each ``(A, T, E)``.
    """
    evaluate_all = make_evaluate_all(policy)

    def from_log_probs(log_prob, batch: AgentBatch, advantage):
        ratio = (log_prob - jax.lax.stop_gradient(batch.log_prob)).sum(axis=0)
        reset = batch.reset[0]
        return jax.vmap(weighted_dice, in_axes=(None, 0, None, None))(
            ratio, advantage, reset, gamma
        )

    def objectives(variables, batch, pain, advantage):
        out = evaluate_all(variables, batch, pain)
        return from_log_probs(out[0], batch, advantage), out

    def own_gradients(variables, batch, pain, advantage):
        """Row ``a`` of the result: ``grad_{theta_a} DiCE_a`` (every log-prob row
        depends on its own variables only, so one VJP with the diagonal
        cotangents gives all agents' own gradients)."""
        log_prob, vjp = jax.vjp(lambda v: evaluate_all(v, batch, pain)[0], variables)
        num = log_prob.shape[0]

        def own(a):
            def f(lp_a):
                return from_log_probs(log_prob.at[a].set(lp_a), batch, advantage)[a]

            return jax.grad(f)(log_prob[a])

        cotangent = jax.vmap(own)(jnp.arange(num))
        return vjp(cotangent)[0]

    def look_ahead(variables, i, batch, pain, advantage):
        num = jax.tree.leaves(variables)[0].shape[0]
        others = (jnp.arange(num) != i).astype(jnp.float32)  # row i stays theta_i

        def ascend(v, g):
            return v + inner_lr * others.reshape((num,) + (1,) * (g.ndim - 1)) * g

        for _ in range(lookahead):
            grads = own_gradients(variables, batch, pain, advantage)
            variables = jax.tree.map(ascend, variables, grads)
        return variables

    def shaped_objective(theta_i, variables, i, batch, pain, advantage):
        variables = _set_row(variables, i, theta_i)
        ahead = look_ahead(variables, i, batch, pain, advantage)
        values, aux = objectives(ahead, batch, pain, advantage)
        return values[i], aux

    return objectives, look_ahead, shaped_objective


def make_lola_update(
    policy: Policy,
    optimizer: optax.GradientTransformation,
    num_epochs: int,
    num_minibatches: int,
    gamma,
    inner_lr,
    lookahead: int,
    normalize_advantage: bool = True,
):
    """Build ``update(variables, opt_state, batch, key, pain, coefs) -> (variables,
    opt_state, stats)`` with the signature and statistics of
    :func:`pain_jax.learn.ppo.make_update` (``stats`` leaves ``(A,)``).

    Every agent takes the LOLA-DiCE step (callers that mix learners keep only the
    rows of the agents that learn with it).  ``batch`` is the agent-stacked
    :class:`AgentBatch` of the shared loop (``advantage`` the agents' GAE
    advantages); ``key`` is split into one permutation key per epoch.
    """
    _, _, shaped_objective = make_objectives(policy, gamma, inner_lr, lookahead)

    def agent_loss(theta_i, variables, i, batch, pain, advantage, coefs):
        objective, (log_prob, entropy, value) = shaped_objective(
            theta_i, variables, i, batch, pain, advantage
        )
        vl = value_loss(value[i], batch.target[i])
        ent = jnp.mean(entropy[i])
        total = -objective + coefs.vf_coef * vl - coefs.ent_coef * ent
        log_ratio = log_prob[i] - batch.log_prob[i]
        ratio = jnp.exp(log_ratio)
        stats = {
            "policy_loss": -objective,
            "value_loss": vl,
            "entropy": ent,
            "loss": total,
            "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
            "clip_frac": jnp.mean((jnp.abs(ratio - 1.0) > coefs.clip_eps).astype(float)),
            "ratio_error": jnp.max(jnp.abs(ratio - 1.0)),
        }
        return total, stats

    grad_loss = jax.grad(agent_loss, has_aux=True)

    def all_agents(variables, opt_state, batch: AgentBatch, pain, coefs):
        num = batch.carry.shape[0]
        advantage = batch.advantage
        if normalize_advantage:
            advantage = jax.vmap(normalize)(advantage)

        def one(i, opt_state_i):
            theta_i = _row(variables, i)
            grads, stats = grad_loss(theta_i, variables, i, batch, pain, advantage, coefs)
            updates, opt_state_i = optimizer.update(grads, opt_state_i, theta_i)
            stats["grad_norm"] = optax.global_norm(grads)
            return optax.apply_updates(theta_i, updates), opt_state_i, stats

        return jax.vmap(one)(jnp.arange(num), opt_state)

    return minibatch_epochs(all_agents, num_epochs, num_minibatches)


def select_agents(mask: jax.Array, chosen: Any, other: Any) -> Any:
    """Rows of ``chosen`` where ``mask`` (bool ``(A,)``) else of ``other`` (pytrees
    with a leading agent axis on every leaf)."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, chosen, other)
