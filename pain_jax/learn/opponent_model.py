"""A learned model of the opponents' values, for Advantage Alignment.

Advantage Alignment needs the opponent's advantage.  By default it is read from the
opponent's own critic (``TrainConfig.opponent_value="critic"``), which a real agent
could not see.  With ``opponent_value="model"`` each agent ``i`` instead fits its own
model ``V^i_j(o^i)`` of *every* agent ``j``'s value from its *own* observation,
regressed on ``j``'s observed rewards, and takes the opponents' advantages from it:

* predictions ``V^i_j(o^i_t)`` on the observations acted on, on the observation
  after the rollout and on the true final observation of each finished episode (the
  bootstrap at truncation; nothing is bootstrapped at termination);
* ``j``'s advantage as agent ``i`` sees it: GAE over ``j``'s rewards with the values
  ``V^i_j`` (:func:`pain_jax.learn.returns.gae`); its TD(lambda) targets are the
  model's regression targets;
* after each update the model takes ``num_epochs`` full-batch Adam steps on the mean
  squared error to those targets.

The model is an MLP on the flattened observation with one output per agent (the
agent's own column is fitted too; it is cheap and a useful check against its critic).
Feed-forward even when the policy is recurrent: it models what the agent can read off
its current observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from pain_jax.learn.returns import gae, next_values
from pain_jax.nets.common import activation as activation_fn
from pain_jax.nets.common import dense


class ValueModel(nn.Module):
    """``obs (*B, *O) -> values float32 (*B, num_agents)``: every agent's value as
    predicted from one agent's observation."""

    num_agents: int
    obs_ndim: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        batch = obs.shape[: obs.ndim - self.obs_ndim]
        x = jnp.asarray(obs, jnp.float32).reshape(batch + (-1,))
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = act(dense(width)(x))
        return dense(self.num_agents, 1.0)(x)


@struct.dataclass
class OpponentModelState:
    """Attributes: ``variables`` and ``opt_state`` of every agent's model, stacked on
    a leading agent axis ``(A, ...)``."""

    variables: Any
    opt_state: Any


class OpponentValueModel:
    """Every agent's learned model of every agent's value (see the module docstring).

    Args: ``num_agents``, ``obs_shape`` (one agent's observation), ``hidden`` and
    ``activation`` of the MLP, ``lr`` and ``max_grad_norm`` of its Adam,
    ``num_epochs`` full-batch steps per update, ``gamma`` and ``gae_lambda``.
    """

    def __init__(
        self,
        num_agents: int,
        obs_shape: tuple[int, ...],
        hidden: Sequence[int],
        activation: str,
        lr: float,
        max_grad_norm: float,
        num_epochs: int,
        gamma: float,
        gae_lambda: float,
    ):
        self.num_agents = num_agents
        self.obs_shape = tuple(obs_shape)
        self.model = ValueModel(
            num_agents, len(self.obs_shape), tuple(hidden), activation
        )
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(max_grad_norm), optax.adam(lr, eps=1e-5)
        )
        self.num_epochs = num_epochs
        self.gamma, self.gae_lambda = gamma, gae_lambda

    def init(self, key: jax.Array) -> OpponentModelState:
        """Fresh models, one init key per agent."""
        obs = jnp.zeros((1,) + self.obs_shape, jnp.float32)
        keys = jax.random.split(key, self.num_agents)
        variables = jax.vmap(lambda k: self.model.init(k, obs))(keys)
        return OpponentModelState(variables, jax.vmap(self.optimizer.init)(variables))

    def predict(self, variables, obs: jax.Array) -> jax.Array:
        """Agent ``i``'s model on agent ``i``'s observations.

        ``obs`` float32 ``(..., A, *O)`` -> float32 ``(..., A, A)``: entry
        ``[..., i, j]`` is agent ``j``'s value as agent ``i`` predicts it.
        """
        lead = obs.ndim - len(self.obs_shape) - 1
        per_agent = jnp.moveaxis(obs, lead, 0)  # (A, ..., *O)
        out = jax.vmap(self.model.apply)(variables, per_agent)  # (A, ..., A)
        return jnp.moveaxis(out, 0, lead)

    def advantages(self, state: OpponentModelState, tr, last_obs: jax.Array):
        """Every agent's advantage as every agent's model sees it.

        Args: ``tr`` a :class:`~pain_jax.learn.rollout.Transitions` with
        ``final_obs`` kept; ``last_obs`` float32 ``(E, A, *O)``, the observation after
        the rollout.  Returns ``(advantages, targets)``, float32 ``(T, E, A, A)``
        (``[t, e, i, j]``: agent ``j``'s, in agent ``i``'s model).
        """
        values = self.predict(state.variables, tr.obs)
        last = self.predict(state.variables, last_obs)
        final = self.predict(state.variables, tr.final_obs)
        done = tr.done[..., None, None]
        terminated = tr.terminated[..., None, None]
        reward = jnp.broadcast_to(tr.reward[..., None, :], values.shape)
        nxt = next_values(values, last, final, done)
        return gae(reward, values, nxt, terminated, done, self.gamma, self.gae_lambda)

    def update(self, state: OpponentModelState, obs: jax.Array, targets: jax.Array):
        """``num_epochs`` full-batch Adam steps of every agent's model.

        ``obs`` float32 ``(T, E, A, *O)``, ``targets`` float32 ``(T, E, A, A)``.
        Returns ``(state, loss float32 (A,))``, the loss before the first step.
        """
        targets = jax.lax.stop_gradient(targets)
        per_agent = lambda x: jnp.moveaxis(x, 2, 0)  # noqa: E731  (A, T, E, ...)

        def loss(variables, obs, target):
            return 0.5 * jnp.mean(jnp.square(self.model.apply(variables, obs) - target))

        def agent_step(variables, opt_state, obs, target):
            value, grads = jax.value_and_grad(loss)(variables, obs, target)
            updates, opt_state = self.optimizer.update(grads, opt_state, variables)
            return optax.apply_updates(variables, updates), opt_state, value

        def epoch(carry, _):
            variables, opt_state = carry
            variables, opt_state, value = jax.vmap(agent_step)(
                variables, opt_state, per_agent(obs), per_agent(targets)
            )
            return (variables, opt_state), value

        (variables, opt_state), losses = jax.lax.scan(
            epoch, (state.variables, state.opt_state), None, length=self.num_epochs
        )
        return OpponentModelState(variables, opt_state), losses[0]
