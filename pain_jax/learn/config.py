"""The training configuration: one frozen dataclass, checked before any compute.

Every field is plain Python (str, int, float, bool, tuples), so a typed command line
(e.g. tyro) can build it.  :meth:`TrainConfig.__post_init__` rejects a bad value
with a ``ValueError`` that names the field; checks that need the environment (a
registered name, valid options, an observation shape the network accepts) run in
:func:`pain_jax.learn.train.make_train`, still before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp

from pain_jax.pain.dynamics import DROPOUT, INVERSE, LINEAR, NOISE, OFF, PainParams

ALGORITHMS = ("ppo", "aa", "aa_pg", "lola_dice")
NETWORKS = ("mlp", "cnn", "gru")
PAIN_MODES = {"off": OFF, "noise": NOISE, "dropout": DROPOUT}
PAIN_SHAPES = {"linear": LINEAR, "inverse": INVERSE}
ACTIVATIONS = ("tanh", "relu")
OPPONENT_VALUES = ("critic", "model")


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs (shapes static, numbers constant).

    Environment: ``env`` (registered name), ``env_options`` (static options and
    params overrides passed to ``pj.make``, e.g. ``{"grid_size": 3, "max_steps":
    50}``).

    Algorithm: ``"ppo"`` (independent PPO), ``"aa"`` (Advantage Alignment,
    proximal PPO-clipped form), ``"aa_pg"`` (Advantage Alignment, plain
    policy-gradient form) or ``"lola_dice"`` (LOLA-DiCE: differentiates through
    ``lola_lookahead`` gradient-ascent steps of size ``lola_inner_lr`` of every
    opponent on its DiCE objective; :mod:`pain_jax.learn.lola_shaping`);
    ``aa_beta`` weights the alignment term.
    ``agent_algorithms`` (one name per agent, e.g. ``("aa", "ppo")``) lets the
    agents learn with different algorithms in one run; empty means every agent uses
    ``algorithm``.  ``opponent_value``: where Advantage Alignment reads the
    opponents' advantages: ``"critic"`` (the opponents' own critics) or ``"model"``
    (each agent's learned model of the opponents' values, fitted on their observed
    rewards; :mod:`pain_jax.learn.opponent_model`).

    Network: ``"mlp"`` (flat or flattened observations), ``"cnn"`` (grid
    observations ``(H, W, C)``) or ``"gru"``; ``hidden`` widths of the dense layers
    (for ``"gru"``: ``hidden[0]`` is the embedding before the GRU cell, ``hidden[1:]``
    (or ``hidden[0]`` when alone) the layers after it), ``conv`` channels of the 3x3
    convolutions, ``gru_hidden`` the carry size.

    Pain: ``pain_mode`` ``"off"``, ``"noise"`` or ``"dropout"``; the dynamics
    (``pain_threshold``, ``pain_scale``, ``pain_decay``, ``pain_linger``, ``pain_cap``,
    ``pain_shape``) and the injection (``pain_sigma``, ``pain_dropout_rate``,
    ``pain_dropout_max``, ``pain_layers`` (``None``: every hidden layer),
    ``pain_logits``, ``pain_critic``) as in :class:`~pain_jax.pain.PainParams`;
    ``observe_own_pain`` / ``observe_others_pain`` append pain levels to the
    observations.  The pain is driven by the reward each step.

    Sizes: ``num_envs`` copies x ``num_steps`` steps per update, ``num_updates``
    updates, each of ``num_epochs`` passes over ``num_minibatches`` minibatches
    (drawn over environments, whole sequences).  Optimisation: Adam with ``lr``
    (linearly annealed to 0 when ``anneal_lr``), gradient clipping at
    ``max_grad_norm``, discount ``gamma``, GAE ``gae_lambda``, ``clip_eps``,
    ``vf_coef``, ``ent_coef``, ``normalize_advantage`` (per minibatch).
    """

    env: str = "coin_game"
    env_options: dict[str, Any] = field(default_factory=dict)
    algorithm: str = "ppo"
    aa_beta: float = 1.0
    lola_lookahead: int = 1
    lola_inner_lr: float = 1.0
    agent_algorithms: tuple[str, ...] = ()
    opponent_value: str = "critic"
    network: str = "mlp"
    hidden: tuple[int, ...] = (64, 64)
    conv: tuple[int, ...] = (16, 16)
    gru_hidden: int = 64
    activation: str = "tanh"
    pain_mode: str = "off"
    pain_threshold: float = 0.0
    pain_scale: float = 1.0
    pain_decay: float = 0.8
    pain_linger: int = 5
    pain_cap: float = 10.0
    pain_shape: str = "linear"
    pain_sigma: float = 0.5
    pain_dropout_rate: float = 0.2
    pain_dropout_max: float = 0.5
    pain_layers: tuple[int, ...] | None = None
    pain_logits: bool = False
    pain_critic: bool = False
    observe_own_pain: bool = False
    observe_others_pain: bool = False
    num_envs: int = 256
    num_steps: int = 50
    num_updates: int = 100
    num_epochs: int = 4
    num_minibatches: int = 4
    lr: float = 2.5e-4
    anneal_lr: bool = False
    max_grad_norm: float = 0.5
    gamma: float = 0.96
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    normalize_advantage: bool = True

    def __post_init__(self):
        choices = {
            "algorithm": ALGORITHMS,
            "network": NETWORKS,
            "activation": ACTIVATIONS,
            "pain_mode": tuple(PAIN_MODES),
            "pain_shape": tuple(PAIN_SHAPES),
            "opponent_value": OPPONENT_VALUES,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            _check(value in allowed, name, f"must be one of {list(allowed)}", value)
        per_agent = self.agent_algorithms
        _check(
            isinstance(per_agent, tuple | list)
            and all(isinstance(a, str) and a in ALGORITHMS for a in per_agent),
            "agent_algorithms",
            f"must be a tuple of names from {list(ALGORITHMS)} (one per agent) or ()",
            per_agent,
        )
        _check(isinstance(self.env, str) and self.env, "env", "must be a name", self.env)
        _check(
            isinstance(self.env_options, dict),
            "env_options",
            "must be a dict",
            self.env_options,
        )
        for name in (
            "num_envs",
            "num_steps",
            "num_updates",
            "num_epochs",
            "num_minibatches",
            "gru_hidden",
        ):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, name, "must be an integer >= 1", value)
        _check(
            _is_int(self.lola_lookahead) and self.lola_lookahead >= 0,
            "lola_lookahead",
            "must be an integer >= 0",
            self.lola_lookahead,
        )
        _check(
            _is_int(self.pain_linger) and self.pain_linger >= 0,
            "pain_linger",
            "must be an integer >= 0",
            self.pain_linger,
        )
        for name in ("hidden", "conv"):
            value = getattr(self, name)
            ok = isinstance(value, tuple | list) and len(value) >= 1
            ok = ok and all(_is_int(v) and v >= 1 for v in value)
            _check(ok, name, "must be a non-empty tuple of integers >= 1", value)
        if self.pain_layers is not None:
            ok = all(_is_int(v) and v >= 0 for v in self.pain_layers)
            _check(ok, "pain_layers", "must be None or integers >= 0", self.pain_layers)
        _check(
            self.num_envs % self.num_minibatches == 0,
            "num_minibatches",
            f"must divide num_envs ({self.num_envs})",
            self.num_minibatches,
        )
        ranges = {  # name: (test, interval as written in the message)
            "lr": (lambda v: v > 0, "(0, inf)"),
            "max_grad_norm": (lambda v: v > 0, "(0, inf)"),
            "clip_eps": (lambda v: v > 0, "(0, inf)"),
            "gamma": (lambda v: 0 <= v <= 1, "[0, 1]"),
            "gae_lambda": (lambda v: 0 <= v <= 1, "[0, 1]"),
            "pain_decay": (lambda v: 0 <= v <= 1, "[0, 1]"),
            "pain_dropout_max": (lambda v: 0 <= v < 1, "[0, 1)"),
        }
        for name, (test, interval) in ranges.items():
            v = getattr(self, name)
            _check(_is_real(v) and test(v), name, f"must be in {interval}", v)
        for name in (
            "vf_coef",
            "ent_coef",
            "aa_beta",
            "lola_inner_lr",
            "pain_scale",
            "pain_cap",
            "pain_sigma",
            "pain_dropout_rate",
        ):
            v = getattr(self, name)
            _check(_is_real(v) and v >= 0, name, "must be a finite number >= 0", v)
        _check(
            _is_real(self.pain_threshold),
            "pain_threshold",
            "must be finite",
            self.pain_threshold,
        )

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def algorithms(self, num_agents: int) -> tuple[str, ...]:
        """Each agent's algorithm name, ``(num_agents,)``; raises ``ValueError`` when
        ``agent_algorithms`` does not name one per agent."""
        if not self.agent_algorithms:
            return (self.algorithm,) * num_agents
        _check(
            len(self.agent_algorithms) == num_agents,
            "agent_algorithms",
            f"needs one name per agent ({num_agents} agents in {self.env!r})",
            self.agent_algorithms,
        )
        return tuple(self.agent_algorithms)

    @property
    def label(self) -> str:
        """A short name of the learners, e.g. ``"aa"`` or ``"aa+ppo"``."""
        names = self.agent_algorithms
        return "+".join(names) if names else self.algorithm

    @property
    def minibatch_envs(self) -> int:
        return self.num_envs // self.num_minibatches

    def pain_params(self) -> PainParams:
        """The traced :class:`PainParams` of this config."""
        f32, i32 = jnp.float32, jnp.int32
        return PainParams(
            threshold=f32(self.pain_threshold),
            scale=f32(self.pain_scale),
            decay=f32(self.pain_decay),
            linger=i32(self.pain_linger),
            cap=f32(self.pain_cap),
            sigma=f32(self.pain_sigma),
            dropout_rate=f32(self.pain_dropout_rate),
            dropout_max=f32(self.pain_dropout_max),
            mode=i32(PAIN_MODES[self.pain_mode]),
            shape=i32(PAIN_SHAPES[self.pain_shape]),
        )


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check(ok: bool, name: str, message: str, value) -> None:
    if not ok:
        raise ValueError(f"invalid TrainConfig.{name}: {message} (got {value!r})")
