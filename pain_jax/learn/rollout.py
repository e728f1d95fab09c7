"""Trajectories of ``A`` learners acting in ``E`` environment copies, in one ``lax.scan``.

Every learner has its own network parameters: the variables are stacked on a leading
agent axis and agent ``i``'s slice acts for agent ``i`` (self-play is the special case
of equal slices).  The environment must be a :class:`~pain_jax.pain.PainWrapper`, so
the pain of each agent is carried through ``step`` in the environment state; each
agent acts under the pain level it feels *before* the step, and the rollout stores
that level together with the pain key of every row, so a learner re-evaluating the
stored actions recomputes exactly the same network (importance ratio 1).

Shapes: ``T`` steps, ``E`` copies, ``A`` agents, ``O`` observation shape, ``H``
recurrent carry size (0 for feed-forward networks).  Keys may be typed
(``jax.random.key``) or raw ``uint32[2]`` threefry keys.

Keys: the rollout key is split once into one key per step; each step key is split
into the acting key (then one per agent, then one action key and one pain key per
row inside :func:`pain_jax.pain.act`), the environment key (one per copy) and the key
of the critic's look at the true final observation.  No key is consumed twice.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from pain_jax.pain.acting import act, act_recurrent, evaluate, evaluate_recurrent
from pain_jax.pain.dynamics import PainParams


class Policy:
    """One calling convention for feed-forward and recurrent actor-critics.

    Feed-forward networks get a dummy carry of shape ``(B, 0)`` so that rollouts and
    updates are written once.  All methods act on one agent's rows ``B``.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.recurrent = hasattr(model, "initial_carry")
        self.hidden = int(model.hidden_size) if self.recurrent else 0

    def initial_carry(self, batch: int) -> jax.Array:
        """Zeros, float32 ``(batch, H)``."""
        return jnp.zeros((batch, self.hidden), jnp.float32)

    def init(self, key: jax.Array, obs: jax.Array, pain: PainParams) -> Any:
        """Variables from one example batch of observations ``(B, *O)``."""
        params_key, pain_key = jax.random.split(key)
        rngs = {"params": params_key, "pain": pain_key}
        level = jnp.zeros(obs.shape[:1], jnp.float32)
        if self.recurrent:
            carry, reset = self.initial_carry(obs.shape[0]), jnp.ones(obs.shape[:1], bool)
            return self.model.init(rngs, carry, obs, reset, level, pain)
        return self.model.init(rngs, obs, level, pain)

    def act(self, variables, carry, obs, reset, level, key, pain: PainParams):
        """``(carry (B, H), Acted)`` for rows ``obs`` ``(B, *O)``, ``reset`` bool
        ``(B,)`` (``obs`` starts an episode), ``level`` float32 ``(B,)``."""
        if self.recurrent:
            return act_recurrent(
                self.model, variables, carry, obs, reset, level, key, pain
            )
        return carry, act(self.model, variables, obs, level, key, pain)

    def evaluate(self, variables, carry, obs, reset, action, level, pain_key, pain):
        """Re-evaluate a stored sequence ``(T, B, ...)`` from the carry ``(B, H)`` it
        started with; returns ``(log_prob, entropy, value)``, float32 ``(T, B)``."""
        pain_key = replay_keys(pain_key)
        if self.recurrent:
            return evaluate_recurrent(
                self.model, variables, carry, obs, reset, action, level, pain_key, pain
            )
        t, b = action.shape
        rows = lambda x: x.reshape((t * b,) + x.shape[2:])  # noqa: E731
        out = evaluate(
            self.model,
            variables,
            rows(obs),
            rows(action),
            rows(level),
            rows(pain_key),
            pain,
        )
        return tuple(x.reshape(t, b) for x in out)


def record_keys(keys: jax.Array) -> jax.Array:
    """Keys as stored in a rollout: their raw data, uint32 ``(..., 2)``.

    A stored pain key is a record of the noise a row acted under; re-evaluating
    under it replays that noise on purpose (see :func:`replay_keys`), which is not
    the reuse of a key for a fresh draw.
    """
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(keys)
    return keys


def replay_keys(data: jax.Array) -> jax.Array:
    """Typed threefry keys from recorded key data (the inverse of
    :func:`record_keys`; the same random bits as the keys acted with)."""
    if jax.dtypes.issubdtype(data.dtype, jax.dtypes.prng_key):
        return data
    return jax.random.wrap_key_data(data, impl="threefry2x32")


@struct.dataclass
class RolloutState:
    """What a rollout continues from.

    Attributes:
      obs: float32 ``(E, A, *O)``, the observation to act on next.
      env_state: the wrapped environments' state, ``(E, ...)`` on every leaf.
      reset: bool ``(E,)``, ``obs`` is the first of an episode.
      carry: float32 ``(E, A, H)``, each agent's recurrent carry before ``obs``.
    """

    obs: jax.Array
    env_state: Any
    reset: jax.Array
    carry: jax.Array


@struct.dataclass
class Transitions:
    """A rollout, time first.  Row ``[t, e, a]`` is agent ``a`` in copy ``e`` at ``t``.

    Attributes:
      obs: float32 ``(T, E, A, *O)``, the observation acted on.
      action: int32 ``(T, E, A)``.
      reward: float32 ``(T, E, A)``.
      done: bool ``(T, E)``, the episode ended at ``t`` (terminated or truncated).
      terminated: bool ``(T, E)``, ... in a terminal state (no bootstrap).
      reset: bool ``(T, E)``, ``obs[t]`` is the first of an episode (fed to recurrent
        networks; it is ``done[t - 1]``, never ``done[t]``).
      log_prob: float32 ``(T, E, A)``, of ``action`` as acted.
      value: float32 ``(T, E, A)``, ``V(obs[t])`` as acted.
      final_value: float32 ``(T, E, A)``, ``V(info["final_obs"][t])``: the value of the
        true next observation, used to bootstrap at truncation (meaningful where
        ``done``).
      pain_level: float32 ``(T, E, A)``, the pain each agent acted under.
      pain_after: float32 ``(T, E, A)``, the pain after this step's reward.
      pain_key: uint32 ``(T, E, A, 2)``, the data of each row's pain key
        (:func:`record_keys`).
      episode: ``info["episode"]`` with ``(T, E)`` in front (read where ``done``).
      final_obs: float32 ``(T, E, A, *O)``, ``info["final_obs"]`` (meaningful where
        ``done``), or ``None`` unless the rollout was asked to keep it (a learned
        model of the opponents' values bootstraps from it at truncation).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    terminated: jax.Array
    reset: jax.Array
    log_prob: jax.Array
    value: jax.Array
    final_value: jax.Array
    pain_level: jax.Array
    pain_after: jax.Array
    pain_key: jax.Array
    episode: dict
    final_obs: jax.Array | None = None


def agent_axes(pain: PainParams) -> PainParams:
    """``vmap`` axes of pain params over the agent axis: ``0`` for a field with a
    leading agent axis ``(A,)``, ``None`` for a scalar shared by all agents.

    Scalars must stay unbatched: a batched ``mode`` would turn the pain layers'
    ``lax.switch`` into a select that runs (and draws randomness for) every mode.
    """
    return jax.tree.map(lambda x: 0 if jnp.ndim(x) >= 1 else None, pain)


def _all_agents(policy: Policy, num_agents: int):
    """Acting of all agents at once: agent ``i``'s variables act on column ``i``.

    ``(variables (A, ...), carry (E, A, H), obs (E, A, *O), reset (E,), level (E, A),
    key, pain) -> (carry (E, A, H), Acted with fields (E, A, ...))``; ``pain`` fields
    are scalars or ``(A,)`` (see :func:`agent_axes`).
    """

    def one(variables, carry, obs, reset, level, key, pain):
        return policy.act(variables, carry, obs, reset, level, key, pain)

    def run(variables, carry, obs, reset, level, key, pain):
        keys = jax.random.split(key, num_agents)
        axes = (0, 1, 1, None, 1, 0, agent_axes(pain))
        return jax.vmap(one, in_axes=axes, out_axes=1)(
            variables, carry, obs, reset, level, keys, pain
        )

    return run


def reset_envs(env, key: jax.Array, env_params, num_envs: int, policy: Policy):
    """Reset ``num_envs`` copies (one key each) into a fresh :class:`RolloutState`."""
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(key, num_envs), env_params
    )
    carry = jnp.zeros((num_envs, env.num_agents, policy.hidden), jnp.float32)
    return RolloutState(obs, env_state, jnp.ones((num_envs,), bool), carry)


def values_now(policy, variables, state: RolloutState, env, key, pain) -> jax.Array:
    """``V(state.obs)`` float32 ``(E, A)`` under the current pain (the bootstrap value
    after a rollout's last step)."""
    level = jax.vmap(env.pain_level)(state.env_state)
    run = _all_agents(policy, env.num_agents)
    return run(variables, state.carry, state.obs, state.reset, level, key, pain)[1].value


def rollout(
    env,
    policy: Policy,
    variables: Any,
    state: RolloutState,
    key: jax.Array,
    env_params,
    num_steps: int,
    keep_final_obs: bool = False,
) -> tuple[RolloutState, Transitions]:
    """Run every copy for exactly ``num_steps`` steps.

    Args:
      env: a :class:`~pain_jax.pain.PainWrapper` (auto-resets, carries pain).
      policy: the :class:`Policy` every agent uses (same architecture).
      variables: agent-stacked variables ``(A, ...)``.
      state: the :class:`RolloutState` to continue from (see :func:`reset_envs`).
      key: consumed once (see the module docstring).
      env_params: ``PainEnvParams`` shared by every copy; ``env_params.pain`` also
        drives the networks' pain layers.
      num_steps: static ``T``.
      keep_final_obs: static; store ``info["final_obs"]`` in the transitions.

    Returns:
      ``(state, transitions)``: the state after the last step and the
      :class:`Transitions`.
    """
    num_envs, num_agents = state.obs.shape[:2]
    pain = env_params.pain
    run = _all_agents(policy, num_agents)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def one_step(state: RolloutState, step_key: jax.Array):
        key_act, key_env, key_final = jax.random.split(step_key, 3)
        level = jax.vmap(env.pain_level)(state.env_state)
        carry, acted = run(
            variables, state.carry, state.obs, state.reset, level, key_act, pain
        )
        obs, env_state, reward, done, info = step(
            jax.random.split(key_env, num_envs), state.env_state, acted.action, env_params
        )
        after = info["pain"].level

        # Only a finished episode needs V(final_obs): skip the forward pass when no
        # copy finished (under a vmap over seeds the cond becomes a select).
        def look(_):
            cont = jnp.zeros((num_envs,), bool)  # final_obs continues its episode
            final_obs = info["final_obs"]
            return run(variables, carry, final_obs, cont, after, key_final, pain)[1].value

        def skip(_):
            return jnp.zeros((num_envs, num_agents), jnp.float32)

        final_value = jax.lax.cond(jnp.any(done), look, skip, None)
        traj = Transitions(
            obs=state.obs,
            action=acted.action,
            reward=reward,
            done=done,
            terminated=info["terminated"],
            reset=state.reset,
            log_prob=acted.log_prob,
            value=acted.value,
            final_value=final_value,
            pain_level=acted.pain_level,
            pain_after=after,
            pain_key=record_keys(acted.pain_key),
            episode=info["episode"],
            final_obs=info["final_obs"] if keep_final_obs else None,
        )
        return RolloutState(obs, env_state, done, carry), traj

    return jax.lax.scan(one_step, state, jax.random.split(key, num_steps))
