"""LOLA-DiCE on the sampled iterated prisoner's dilemma (Foerster et al., 2018).

Two tabular memory-one policies (5 logits each, ``P(cooperate | state) =
sigmoid(theta[state])`` with the states START, CC, CD, DC, DD of
:mod:`pain_jax.envs.payoffs`, own view) play a batch of sampled episodes of
:class:`pain_jax.envs.matrix.MatrixGame` in one ``lax.scan``.  Each player climbs its
DiCE objective ``sum_t gamma^t r_t box(W_{<=t})`` (``W`` = cumulative log-probs of BOTH
players' actions) or its baseline form (:func:`pain_jax.learn.dice`), evaluated at the
opponent's parameters after ``k`` look-ahead steps

    theta_opp^(j+1) = theta_opp^(j) + lr_in * grad_opp DiCE_opp(theta_me, theta_opp^(j))

each on a fresh sampled batch, differentiated through (the graph is kept through
``theta_me``).  ``k = 0`` is the naive learner.  Both players update simultaneously
from the same parameters with a plain SGD (or Adam) step.

Sampling always uses stop-gradient parameters, so the gradient of the look-ahead
objective equals the gradient of the same objective with the sampled actions held
fixed (:func:`shaped_objective` with a fixed ``sample``) - what the finite-difference
test checks.

Defaults follow the authors' released LOLA-DiCE IPD code (TensorFlow, the run script
behind the paper's figure): 150-step episodes, gamma 0.96, plain SGD for both the
look-ahead (lr 0.3) and the real update (lr 0.2), no learned critic but the
per-time-step batch mean of the discounted rewards subtracted (``batch_mean``),
logits initialised from a normal truncated at 2 std with std ``1/sqrt(5)`` (the
default initialiser of a 5-input linear layer), and the figure's score is the
normalised discounted return ``(1 - gamma) sum_t gamma^t r_t`` of the current
policies.  Batch 64: the figure's runs (their result folders are named ``bs64``; the
run script's own default is 512).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from pain_jax.envs.matrix import MatrixGame
from pain_jax.learn.dice import dice_objective, dice_objective_baseline

BASELINES = ("batch_mean", "value", "none")


@dataclasses.dataclass(frozen=True)
class LolaDiceConfig:
    """Static settings (hashable; changing one recompiles).

    Attributes:
      lookahead: ``k``, opponent look-ahead steps (0 = naive learner).
      batch: episodes per sampled batch.
      steps: episode length (every episode is exactly this long).
      gamma: discount of the DiCE objective.
      lr_in: SGD step of the opponent's look-ahead.
      lr_out: step of the real (outer) update.
      optimizer: ``"sgd"`` (the reference code) or ``"adam"`` for the outer update.
      lr_v: Adam step of the tabular value baseline (``baseline="value"`` only).
      baseline: variance reduction of the DiCE objective, never differentiated:
        ``"batch_mean"``: ``sum_t (gamma^t r_t - mean_batch gamma^t r_t) box(W<=t)``
        (the reference code); ``"value"``: ``sum_t gamma^t A_t [box(W<=t) -
        box(W<t)]`` with ``A_t = G_t - V(s_t)`` and a tabular ``V`` fitted to the
        returns-to-go; ``"none"``: plain DiCE.
      magic_box: ``False`` replaces DiCE by the first-order surrogate
        ``sum_t gamma^t r_t W_{<=t}`` (``A_t log pi_t`` with the value baseline): right
        first derivatives, but no cross term, so the look-ahead cannot see
        ``theta_me`` (the paper's "without the magic box" ablation).
      updates: learning updates per run.
      init_std: std of the initial logits, drawn from a normal truncated at +-2 std
        (0 = all start at P(C) = 0.5).
      game: matrix game name (payoffs from :mod:`pain_jax.envs.payoffs`).
    """

    lookahead: int = 1
    batch: int = 64
    steps: int = 150
    gamma: float = 0.96
    lr_in: float = 0.3
    lr_out: float = 0.2
    optimizer: str = "sgd"
    lr_v: float = 0.1
    baseline: str = "batch_mean"
    magic_box: bool = True
    updates: int = 200
    init_std: float = 5**-0.5
    game: str = "ipd"

    def __post_init__(self):
        if self.baseline not in BASELINES:
            raise ValueError(
                f"baseline must be one of {BASELINES}, got {self.baseline!r}"
            )
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")


@struct.dataclass
class Trajectory:
    """A sampled batch; ``T`` steps, ``B`` episodes.

    Attributes:
      states: int32 ``(T, B, 2)``, each player's memory-one state (own view).
      actions: int32 ``(T, B, 2)``, 0 = cooperate, 1 = defect.
      rewards: float ``(T, B, 2)``.
    """

    states: jax.Array
    actions: jax.Array
    rewards: jax.Array


@struct.dataclass
class LolaDiceState:
    """Learner state: ``thetas`` / ``values`` float ``(2, 5)`` (row = player)."""

    thetas: jax.Array
    values: jax.Array
    opt_theta: Any
    opt_value: Any


# ----------------------------------------------------------------------------------
# sampling and log-probs
# ----------------------------------------------------------------------------------
def _logits(thetas: jax.Array, states: jax.Array) -> jax.Array:
    """Logit of cooperating, ``(..., 2)``, from ``thetas (2, 5)``, ``states (..., 2)``."""
    return thetas[jnp.arange(2), states]


def log_probs(thetas: jax.Array, traj: Trajectory) -> jax.Array:
    """Sum of both players' log-probs of the taken actions, ``(T, B)``."""
    logit = _logits(thetas, traj.states)
    lp = jnp.where(
        traj.actions == 0, jax.nn.log_sigmoid(logit), jax.nn.log_sigmoid(-logit)
    )
    return lp.sum(-1)


@functools.partial(jax.jit, static_argnames=("batch", "steps", "game"))
def rollout(
    key: jax.Array, thetas: jax.Array, batch: int, steps: int, game: str = "ipd"
) -> Trajectory:
    """Sample ``batch`` episodes of ``steps`` steps with policies ``thetas (2, 5)``.

    Parameters are detached: gradients flow only through :func:`log_probs`.  Jitted
    (``batch``, ``steps``, ``game`` static) so eager callers compile it once.
    """
    env = MatrixGame(game)
    params = env.default_params().replace(max_steps=steps)
    thetas = jax.lax.stop_gradient(thetas)
    k_reset, k_steps = jax.random.split(key)  # one key, one use (C18)
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, batch), params)

    def body(carry, k):
        obs, state = carry
        s = jnp.argmax(obs, -1).astype(jnp.int32)  # (B, 2) memory-one states
        p_coop = jax.nn.sigmoid(_logits(thetas, s))
        k_act, k_env = jax.random.split(k)
        actions = (jax.random.uniform(k_act, s.shape) >= p_coop).astype(jnp.int32)
        obs, state, rew, _, _ = jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(k_env, batch), state, actions, params
        )
        return (obs, state), (s, actions, rew.astype(thetas.dtype))

    _, (s, a, r) = jax.lax.scan(body, (obs, state), jax.random.split(k_steps, steps))
    return Trajectory(states=s, actions=a, rewards=r)


def rewards_to_go(rewards: jax.Array, gamma) -> jax.Array:
    """``G_t = sum_{u >= t} gamma^(u - t) r_u`` along the leading axis."""

    def body(g, r):
        g = r + gamma * g
        return g, g

    _, g = jax.lax.scan(body, jnp.zeros_like(rewards[0]), rewards, reverse=True)
    return g


# ----------------------------------------------------------------------------------
# objectives
# ----------------------------------------------------------------------------------
def dice_value(
    thetas: jax.Array,
    traj: Trajectory,
    player: int,
    gamma,
    values: jax.Array | None = None,
    magic_box: bool = True,
    centre: bool = False,
) -> jax.Array:
    """Batch-mean DiCE objective of ``player`` (scalar).

    ``values`` (``(5,)``, the player's tabular baseline) selects the baseline form
    with ``A_t = G_t - V(s_t)``; ``None`` the plain ``sum_t gamma^t r_t box(W<=t)``,
    with ``centre=True`` the rewards minus their mean over the batch at each time
    step (a constant baseline per ``t``: ``E[box(W<=t)]`` is 1 at every order, so
    subtracting it changes no expected derivative).  All give unbiased derivatives
    of every order of the expected discounted return (the batch mean up to its
    ``1/B`` share of the sample).  ``magic_box=False``: the first-order surrogate
    instead (see :class:`LolaDiceConfig`).
    """
    lp = log_probs(thetas, traj)
    r = traj.rewards[..., player]
    disc = gamma ** jnp.arange(r.shape[0], dtype=r.dtype)[:, None]
    if values is None:
        if centre:
            r = r - r.mean(axis=1, keepdims=True)
        if not magic_box:
            return jnp.sum(disc * r * jnp.cumsum(lp, axis=0), axis=0).mean()
        return dice_objective(lp, r, gamma).mean()
    adv = rewards_to_go(r, gamma) - values[traj.states[..., player]]
    if not magic_box:
        return jnp.sum(disc * jax.lax.stop_gradient(adv) * lp, axis=0).mean()
    return dice_objective_baseline(lp, adv, gamma).mean()


def _pair(me: int, theta_me, theta_opp):
    return jnp.stack([theta_me, theta_opp] if me == 0 else [theta_opp, theta_me])


Sampler = Callable[[int, jax.Array], Trajectory]


def shaped_objective(
    theta_me: jax.Array,
    theta_opp: jax.Array,
    me: int,
    sample: Sampler,
    config: LolaDiceConfig,
    values: jax.Array | None = None,
) -> jax.Array:
    """``DiCE_me(theta_me, theta_opp^(k))`` after ``k = config.lookahead`` opponent steps.

    Args:
      theta_me, theta_opp: ``(5,)`` logits.
      me: 0 or 1, which player ``theta_me`` is (static).
      sample: ``sample(j, thetas (2, 5)) -> Trajectory`` for look-ahead step
        ``j < k`` and ``j = k`` for the outer objective; a sampler that ignores
        ``thetas`` holds the sampled actions fixed.
      values: ``(2, 5)`` tabular baselines, used (and required) when
        ``config.baseline == "value"``.
    """
    opp = 1 - me
    use_v = config.baseline == "value"
    if use_v and values is None:
        raise ValueError('baseline="value" needs the tabular values')
    v_me = values[me] if use_v else None
    v_opp = values[opp] if use_v else None
    centre = config.baseline == "batch_mean"

    def objective(thetas, traj, player, v):
        return dice_value(thetas, traj, player, config.gamma, v, config.magic_box, centre)

    def opp_objective(t_opp, t_me, traj):
        return objective(_pair(me, t_me, t_opp), traj, opp, v_opp)

    for j in range(config.lookahead):
        traj = sample(j, _pair(me, theta_me, theta_opp))
        grad_opp = jax.grad(opp_objective)(theta_opp, theta_me, traj)
        theta_opp = theta_opp + config.lr_in * grad_opp
    traj = sample(config.lookahead, _pair(me, theta_me, theta_opp))
    return objective(_pair(me, theta_me, theta_opp), traj, me, v_me)


# ----------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------
def _optimizers(config: LolaDiceConfig):
    outer = optax.sgd if config.optimizer == "sgd" else optax.adam
    return outer(config.lr_out), optax.adam(config.lr_v)


def init_state(key: jax.Array, config: LolaDiceConfig, dtype=jnp.float32):
    """Logits ``config.init_std * TruncatedNormal(-2, 2)``, values 0, fresh optimisers."""
    thetas = config.init_std * jax.random.truncated_normal(key, -2.0, 2.0, (2, 5), dtype)
    values = jnp.zeros((2, 5), dtype)
    opt_t, opt_v = _optimizers(config)
    return LolaDiceState(thetas, values, opt_t.init(thetas), opt_v.init(values))


def per_step_returns(traj: Trajectory) -> jax.Array:
    """Mean reward per step of each player, ``(2,)``."""
    return traj.rewards.mean(axis=(0, 1))


def discounted_per_step(traj: Trajectory, gamma) -> jax.Array:
    """``(1 - gamma) sum_t gamma^t r_t`` of each player, batch mean, ``(2,)``.

    The score of the paper's figure (the reference code logs this of the current
    policies); it weights the first ~25 steps, so it differs from
    :func:`per_step_returns` while the start state still matters.
    """
    disc = gamma ** jnp.arange(traj.rewards.shape[0], dtype=traj.rewards.dtype)
    return (
        (1 - gamma) * jnp.einsum("t,tbi->i", disc, traj.rewards) / traj.rewards.shape[1]
    )


def _scores(traj: Trajectory, thetas: jax.Array, gamma) -> dict:
    return {
        "returns": per_step_returns(traj),
        "discounted": discounted_per_step(traj, gamma),
        "p_coop": jax.nn.sigmoid(thetas),
    }


def update(key: jax.Array, state: LolaDiceState, config: LolaDiceConfig):
    """One simultaneous update of both players (and their value baselines).

    Returns ``(state, metrics)``; metrics describe the policies *before* the update,
    on a fresh batch: ``returns (2,)`` mean reward per step, ``discounted (2,)``
    (:func:`discounted_per_step`), ``p_coop (2, 5)``.
    """
    k_eval, k0, k1 = jax.random.split(key, 3)
    thetas, values = state.thetas, state.values
    base = values if config.baseline == "value" else None

    def grad_of(me, k):
        keys = jax.random.split(k, config.lookahead + 1)

        def sample(j, th):
            return rollout(keys[j], th, config.batch, config.steps, config.game)

        return jax.grad(shaped_objective)(
            thetas[me], thetas[1 - me], me, sample, config, base
        )

    grads = jnp.stack([grad_of(0, k0), grad_of(1, k1)])
    opt_t, opt_v = _optimizers(config)
    upd, opt_theta = opt_t.update(-grads, state.opt_theta, thetas)
    new_thetas = optax.apply_updates(thetas, upd)

    traj = rollout(k_eval, thetas, config.batch, config.steps, config.game)
    new_values, opt_value = values, state.opt_value
    if config.baseline == "value":
        # value baselines: regress V_i(s_t) on G_t of the current policies
        g = rewards_to_go(traj.rewards, config.gamma)  # (T, B, 2)

        def value_loss(v):
            pred = jnp.stack([v[i][traj.states[..., i]] for i in range(2)], -1)
            return jnp.mean((pred - g) ** 2)

        grad_v = jax.grad(value_loss)(values)
        upd_v, opt_value = opt_v.update(grad_v, state.opt_value, values)
        new_values = optax.apply_updates(values, upd_v)
    metrics = _scores(traj, thetas, config.gamma)
    return LolaDiceState(new_thetas, new_values, opt_theta, opt_value), metrics


def make_train(config: LolaDiceConfig):
    """``train(key) -> (state, metrics, final)``; pure, jit- and vmap-able over keys.

    ``metrics`` stack :func:`update`'s metrics over ``config.updates``; ``final`` has
    the same scores (``returns``, ``discounted``, ``p_coop``) of the final policies
    on a fresh batch.
    """

    def train(key):
        k_init, k_run, k_final = jax.random.split(key, 3)
        state = init_state(k_init, config)

        def body(state, k):
            return update(k, state, config)

        state, metrics = jax.lax.scan(
            body, state, jax.random.split(k_run, config.updates)
        )
        traj = rollout(k_final, state.thetas, config.batch, config.steps, config.game)
        return state, metrics, _scores(traj, state.thetas, config.gamma)

    return train
