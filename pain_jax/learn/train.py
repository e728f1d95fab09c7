"""One training loop for every learner: ``make_train(config) -> train(key)``.

``train`` is a pure function of its key, jitted end to end and ``vmap``-able over
seeds (``jax.jit(jax.vmap(make_train(config)))(keys)``).  One update is

1. a rollout of all agents in ``num_envs`` copies for ``num_steps`` steps
   (:func:`pain_jax.learn.rollout.rollout`), pain carried and stored;
2. each agent's GAE advantages from its own critic, bootstrapping at truncation from
   ``V(final_obs)`` and never across an episode boundary
   (:func:`pain_jax.learn.returns.gae`);
3. each agent's *policy advantage*: the GAE advantage itself (``"ppo"``) or the
   Advantage Alignment modified advantage (``"aa"``, ``"aa_pg"``), with the
   opponents' advantages from their critics or from a learned model
   (:mod:`pain_jax.learn.opponent_model`);
4. each agent's policy loss (clipped, or plain policy gradient), value loss and
   entropy bonus, minimised by Adam over epochs and minibatches
   (:func:`pain_jax.learn.ppo.make_update`), each agent on its own rows.

``"lola_dice"`` agents replace step 4 by the LOLA-DiCE step of
:mod:`pain_jax.learn.lola_shaping` (on their GAE advantages).

Algorithms are rows of :data:`ALGORITHMS`; nothing else differs between them, so
agents may learn with different algorithms in one run (``agent_algorithms``).  The
host can drive the same pure pieces in chunks (:meth:`Trainer.init`,
:meth:`Trainer.run`) for progress bars and checkpoints.

Keys: ``train(key)`` splits its key into the network-init, reset and loop keys;
each update splits the loop key into the next loop key and one key each for the
rollout, the bootstrap value and the minibatch permutations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

import pain_jax as pj
from pain_jax.learn.advantage_alignment import modified_advantage
from pain_jax.learn.config import TrainConfig
from pain_jax.learn.lola_shaping import make_lola_update, select_agents
from pain_jax.learn.opponent_model import OpponentModelState, OpponentValueModel
from pain_jax.learn.ppo import (
    AgentBatch,
    LossParams,
    PolicyLoss,
    clipped_policy_loss,
    make_update,
    policy_gradient_loss,
)
from pain_jax.learn.returns import gae, next_values
from pain_jax.learn.rollout import (
    Policy,
    RolloutState,
    Transitions,
    reset_envs,
    rollout,
    values_now,
)
from pain_jax.nets import ActorCriticCNN, ActorCriticGRU, ActorCriticMLP
from pain_jax.pain.wrapper import PainWrapper


@dataclass(frozen=True)
class Algorithm:
    """What distinguishes one learner from another in the shared loop: whether its
    policy advantage is aligned with the opponents' (Advantage Alignment) or its own
    GAE advantage (independent learning), and its policy loss."""

    aligned: bool
    policy_loss: PolicyLoss


ALGORITHMS: dict[str, Algorithm] = {
    "ppo": Algorithm(False, clipped_policy_loss),
    "aa": Algorithm(True, clipped_policy_loss),
    "aa_pg": Algorithm(True, policy_gradient_loss),
}


@struct.dataclass
class RunnerState:
    """Everything a training run carries from one update to the next.

    Attributes:
      variables: the agents' network variables, ``(A, ...)`` on every leaf.
      opt_state: their optimiser states, ``(A, ...)``.
      rollout: the :class:`RolloutState` the next rollout continues from.
      key: the loop key (consumed by the next update).
      update: int32 ``()``, updates done.
      opponent_model: the :class:`OpponentModelState` of the agents' learned models
        of the opponents' values (``opponent_value="model"``), else ``None``.
    """

    variables: Any
    opt_state: Any
    rollout: RolloutState
    key: jax.Array
    update: jax.Array
    opponent_model: OpponentModelState | None = None


def build_network(config: TrainConfig, env) -> Policy:
    """The :class:`Policy` of ``config.network`` for ``env``'s observations."""
    obs_shape, n = tuple(env.obs_shape), env.num_actions
    # Pain-able layers: MLP hidden layers; CNN convolutions then hidden layers; GRU
    # output then the layers after it.  An index past them would silently feel none.
    depth = {
        "mlp": len(config.hidden),
        "cnn": len(config.conv) + len(config.hidden),
        "gru": 1 + len(config.hidden[1:] or config.hidden[:1]),
    }[config.network]
    too_deep = [i for i in (config.pain_layers or ()) if i >= depth]
    if too_deep:
        raise ValueError(
            f"invalid TrainConfig.pain_layers: {too_deep} out of range for the "
            f"{config.network} network's {depth} pain-able layers (0..{depth - 1})"
        )
    pain = dict(
        pain_layers=config.pain_layers,
        pain_logits=config.pain_logits,
        pain_critic=config.pain_critic,
        activation=config.activation,
    )
    if config.network == "mlp":
        model = ActorCriticMLP(n, hidden=config.hidden, obs_ndim=len(obs_shape), **pain)
    elif config.network == "cnn":
        if len(obs_shape) != 3:
            raise ValueError(
                f"invalid TrainConfig.network: 'cnn' needs grid observations (H, W, C), "
                f"but {config.env!r} observes {obs_shape}"
            )
        model = ActorCriticCNN(n, conv=config.conv, hidden=config.hidden, **pain)
    else:
        model = ActorCriticGRU(
            n,
            hidden_size=config.gru_hidden,
            embed=config.hidden[0],
            hidden=config.hidden[1:] or config.hidden[:1],
            obs_ndim=len(obs_shape),
            **pain,
        )
    return Policy(model)


def _episode_means(episode: dict, done: jax.Array) -> dict[str, jax.Array]:
    """Mean of every finished episode's statistics (NaN entries skipped; NaN when no
    episode finished).  ``episode`` leaves are ``(T, E, ...)``, ``done`` ``(T, E)``."""
    out = {}
    for name, x in episode.items():
        x = jnp.asarray(x, jnp.float32)
        valid = done.reshape(done.shape + (1,) * (x.ndim - 2)) & jnp.isfinite(x)
        count = valid.sum(axis=(0, 1))
        total = jnp.where(valid, x, 0.0).sum(axis=(0, 1))
        out[f"episode/{name}"] = jnp.where(
            count > 0, total / jnp.maximum(count, 1), jnp.nan
        )
    return out


class Trainer:
    """The pure pieces of a run, built once from a :class:`TrainConfig`.

    Attributes: ``config``, ``env`` (a :class:`PainWrapper`), ``env_params``
    (``PainEnvParams``), ``policy``, ``optimizer``, ``algorithm``.
    """

    def __init__(self, config: TrainConfig):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        try:
            base, base_params = pj.make(config.env, **config.env_options)
        except KeyError as e:
            raise ValueError(f"invalid TrainConfig.env: {e.args[0]}") from e
        except (TypeError, ValueError) as e:
            raise ValueError(f"invalid TrainConfig.env_options: {e}") from e
        self.env = PainWrapper(
            base,
            observe_own=config.observe_own_pain,
            observe_others=config.observe_others_pain,
        )
        self.env_params = self.env.wrap_params(base_params, config.pain_params())
        self.env.validate_params(self.env_params)
        self.num_agents = self.env.num_agents
        self.policy = build_network(config, self.env)
        self.algorithm_names = config.algorithms(self.num_agents)
        # LOLA-DiCE agents learn by their own update (on GAE advantages); their
        # rows of the shared update, if one runs for mixed learners, are discarded.
        self.lola = tuple(n == "lola_dice" for n in self.algorithm_names)
        self.algorithms = tuple(
            ALGORITHMS["ppo" if lola else n]
            for n, lola in zip(self.algorithm_names, self.lola, strict=True)
        )
        self.aligned = tuple(a.aligned for a in self.algorithms)
        self.opponent_model = None
        if config.opponent_value == "model" and any(self.aligned):
            self.opponent_model = OpponentValueModel(
                self.num_agents,
                tuple(self.env.obs_shape),
                config.hidden,
                config.activation,
                config.lr,
                config.max_grad_norm,
                config.num_epochs,
                config.gamma,
                config.gae_lambda,
            )
        steps = config.num_updates * config.num_epochs * config.num_minibatches
        lr = (
            optax.linear_schedule(config.lr, 0.0, steps)
            if config.anneal_lr
            else config.lr
        )
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5)
        )
        self.coefs = LossParams(
            clip_eps=config.clip_eps, vf_coef=config.vf_coef, ent_coef=config.ent_coef
        )
        self._update = make_update(
            self.policy,
            self.optimizer,
            tuple(a.policy_loss for a in self.algorithms),
            config.num_epochs,
            config.num_minibatches,
            config.normalize_advantage,
        )
        self._lola_update = None
        if any(self.lola):
            self._lola_update = make_lola_update(
                self.policy,
                self.optimizer,
                config.num_epochs,
                config.num_minibatches,
                config.gamma,
                config.lola_inner_lr,
                config.lola_lookahead,
                config.normalize_advantage,
            )

    # ----- the pure pieces ----------------------------------------------------
    def init(self, key: jax.Array, env_params=None) -> RunnerState:
        """Fresh networks (one init key per agent), optimisers and environments."""
        env_params = self.env_params if env_params is None else env_params
        key_net, key_reset, key_loop, key_model = jax.random.split(key, 4)
        obs = jnp.zeros((1,) + tuple(self.env.obs_shape), jnp.float32)
        pain = env_params.pain
        variables = jax.vmap(lambda k: self.policy.init(k, obs, pain))(
            jax.random.split(key_net, self.num_agents)
        )
        opt_state = jax.vmap(self.optimizer.init)(variables)
        state = reset_envs(
            self.env, key_reset, env_params, self.config.num_envs, self.policy
        )
        model = self.opponent_model and self.opponent_model.init(key_model)
        return RunnerState(variables, opt_state, state, key_loop, jnp.int32(0), model)

    def collect(self, runner: RunnerState, key: jax.Array, env_params=None):
        """Roll out and build the agents' batch.

        Returns ``(rollout_state, transitions, batch, model_targets)``: the state
        after the rollout, the :class:`Transitions`, the agent-first
        :class:`AgentBatch` (``(A, T, E, ...)``) with each agent's policy advantages,
        and the learned opponent-value models' regression targets ``(T, E, A, A)``
        (``None`` without them).
        """
        cfg = self.config
        env_params = self.env_params if env_params is None else env_params
        key_roll, key_last = jax.random.split(key)
        state, tr = rollout(
            self.env,
            self.policy,
            runner.variables,
            runner.rollout,
            key_roll,
            env_params,
            cfg.num_steps,
            keep_final_obs=self.opponent_model is not None,
        )
        last = values_now(
            self.policy, runner.variables, state, self.env, key_last, env_params.pain
        )
        done, terminated = tr.done[..., None], tr.terminated[..., None]
        nxt = next_values(tr.value, last, tr.final_value, done)
        adv, target = gae(
            tr.reward, tr.value, nxt, terminated, done, cfg.gamma, cfg.gae_lambda
        )
        policy_adv, model_targets = self.policy_advantages(runner, state, tr, adv)
        agent_first = lambda x: jnp.moveaxis(x, 2, 0)  # noqa: E731  (T, E, A, ..)
        reset = jnp.broadcast_to(tr.reset, (self.num_agents,) + tr.reset.shape)
        batch = AgentBatch(
            obs=agent_first(tr.obs),
            action=agent_first(tr.action),
            reset=reset,
            log_prob=agent_first(tr.log_prob),
            pain_level=agent_first(tr.pain_level),
            pain_key=agent_first(tr.pain_key),
            advantage=agent_first(policy_adv),
            target=agent_first(target),
            carry=jnp.moveaxis(runner.rollout.carry, 1, 0),
        )
        return state, tr, batch, model_targets

    def policy_advantages(self, runner, state, tr: Transitions, adv: jax.Array):
        """Each agent's policy advantage, float32 ``(T, E, A)``, from the GAE
        advantages ``adv`` ``(T, E, A)``: its own for independent learners, the
        Advantage Alignment modified advantage for aligned ones, with the opponents'
        advantages (summed over opponents) from their critics or from the agent's
        learned model.  Also returns the model's targets (or ``None``)."""
        if not any(self.aligned):
            return adv, None
        if self.opponent_model is None:
            others = adv.sum(axis=-1, keepdims=True) - adv
            targets = None
        else:
            seen, targets = self.opponent_model.advantages(
                runner.opponent_model, tr, state.obs
            )
            off_diagonal = 1.0 - jnp.eye(self.num_agents, dtype=seen.dtype)
            others = (seen * off_diagonal).sum(axis=-1)
        cfg = self.config
        reset = tr.reset[..., None]
        aligned = modified_advantage(adv, others, reset, cfg.gamma, cfg.aa_beta)
        mask = jnp.asarray(self.aligned)
        return jnp.where(mask, aligned, adv), targets

    def update(self, runner: RunnerState, env_params=None):
        """One update: ``runner -> (runner, metrics)`` (metrics: see
        :func:`metrics`)."""
        env_params = self.env_params if env_params is None else env_params
        key, key_collect, key_update = jax.random.split(runner.key, 3)
        state, tr, batch, model_targets = self.collect(runner, key_collect, env_params)
        model = runner.opponent_model
        if model is not None:
            model, stats_model = self.opponent_model.update(model, tr.obs, model_targets)
        variables, opt_state, stats = self.learn(
            runner.variables, runner.opt_state, batch, key_update, env_params.pain
        )
        if model is not None:
            stats = {**stats, "opponent_model_loss": stats_model}
        runner = RunnerState(variables, opt_state, state, key, runner.update + 1, model)
        return runner, self.metrics(runner, tr, stats)

    def learn(self, variables, opt_state, batch, key, pain):
        """Every agent's learning step on ``batch``: the shared update, the
        LOLA-DiCE update, or (mixed learners) both, each agent keeping its own
        algorithm's rows.  Returns ``(variables, opt_state, stats)``."""
        if self._lola_update is None:
            return self._update(variables, opt_state, batch, key, pain, self.coefs)
        if all(self.lola):
            return self._lola_update(variables, opt_state, batch, key, pain, self.coefs)
        key_shared, key_lola = jax.random.split(key)
        shared = self._update(variables, opt_state, batch, key_shared, pain, self.coefs)
        lola = self._lola_update(variables, opt_state, batch, key_lola, pain, self.coefs)
        mask = jnp.asarray(self.lola)
        variables, opt_state = select_agents(mask, lola[:2], shared[:2])
        stats = {k: jnp.where(mask, lola[2][k], v) for k, v in shared[2].items()}
        return variables, opt_state, stats

    def metrics(self, runner: RunnerState, tr: Transitions, stats: dict) -> dict:
        """Per-update metrics.

        * ``reward_per_step`` float32 ``(A,)``: mean reward per step.
        * ``pain`` float32 ``(A,)``: mean pain level acted under (the dynamics run in
          every mode; with ``pain_mode="off"`` the networks ignore it);
          ``pain_share`` ``(A,)``: share of steps in pain.
        * ``episodes`` int32 ``()``: episodes finished in this rollout;
          ``episode/<stat>``: mean over them of each ``info["episode"]`` statistic
          (e.g. ``episode/return`` ``(A,)``, ``episode/own_coin_rate`` ``()`` on
          Coin Game); NaN when none finished.
        * every loss statistic, ``(A,)``: ``loss``, ``policy_loss``, ``value_loss``,
          ``entropy``, ``approx_kl``, ``clip_frac``, ``grad_norm``, ``ratio_error``,
          ``initial_ratio_error``.
        * ``update`` int32 ``()``: updates done (environment steps are ``update *
          num_envs * num_steps``, see :func:`env_steps`; an int32 would overflow).
        """
        return {
            "update": runner.update,
            "reward_per_step": tr.reward.mean(axis=(0, 1)),
            "pain": tr.pain_level.mean(axis=(0, 1)),
            "pain_share": (tr.pain_level > 0).mean(axis=(0, 1)),
            "episodes": tr.done.sum().astype(jnp.int32),
            **_episode_means(tr.episode, tr.done),
            **stats,
        }

    def run(self, runner: RunnerState, num_updates: int, env_params=None):
        """``num_updates`` updates in one ``lax.scan``: ``(runner, metrics)`` with a
        leading ``(num_updates,)`` axis on every metric."""
        step = lambda r, _: self.update(r, env_params)  # noqa: E731
        return jax.lax.scan(step, runner, None, length=num_updates)


def make_trainer(config: TrainConfig) -> Trainer:
    """Build (and check) everything static; nothing is compiled yet."""
    return Trainer(config)


def make_train(config: TrainConfig):
    """``train(key, env_params=None) -> (runner_state, metrics)``: the whole run.

    Pure and jittable; ``vmap`` it over keys for seeds (and over ``env_params``,
    e.g. a stacked ``PainEnvParams``, for a sweep).  Raises ``ValueError`` naming the
    field for a bad config, before any compute.
    """
    trainer = make_trainer(config)

    def train(key: jax.Array, env_params=None):
        runner = trainer.init(key, env_params)
        return trainer.run(runner, config.num_updates, env_params)

    train.trainer = trainer
    return train


def env_steps(config: TrainConfig, updates: int | None = None) -> int:
    """Environment steps per seed after ``updates`` updates (default: the whole
    run), as a Python int."""
    updates = config.num_updates if updates is None else int(updates)
    return math.prod((updates, config.num_envs, config.num_steps))
