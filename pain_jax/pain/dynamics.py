"""Pain dynamics: a pure function from (pain state, reward, pain params) to pain state.

The model (``shared/docs/mission.md``, "Pain, specified"), per agent:

* instant pain ``q_t = scale * max(0, threshold - r_t)`` (``LINEAR``, the default), or
  the saturating inverse shape ``q_t = scale * (1 - 1 / (1 + max(0, threshold - r_t)))``
  (``INVERSE``: equal to the linear shape for small deficits, never above ``scale``);
* a step is *calm* when ``r_t >= threshold``; ``calm`` counts calm steps since the
  reward was last below the threshold;
* ``p_t = max(q_t, decay * p_{t-1})`` on a painful step and on each of the first
  ``linger`` (N) calm steps, so pain lingers and decays for exactly N calm steps; from
  the (N+1)-th calm step on ``p_t = 0`` (``linger = 0``: no lingering at all);
* ``p_t <= cap``.

Every field of :class:`PainParams` is a traced value (a pytree leaf), so a sweep over
pain settings is one ``vmap`` over a stacked ``PainParams``; a field may also carry an
agent axis, e.g. ``threshold`` of shape ``(num_agents,)``, and broadcasts against the
reward.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

# Modes of pain injection in the networks (``PainParams.mode``).
OFF, NOISE, DROPOUT = 0, 1, 2
# Shapes of instant pain (``PainParams.shape``).
LINEAR, INVERSE = 0, 1
# ``calm`` saturates here instead of overflowing; any N below it behaves exactly.
CALM_MAX = 2**30


@struct.dataclass
class PainParams:
    """Traced pain settings (every field is a leaf; stack them to sweep with vmap).

    Attributes:
      threshold: float ``()`` or ``(A,)``, reward below this hurts.
      scale: float, slope of instant pain per unit of reward deficit.
      decay: float in ``[0, 1]``, lingering factor ``p_t = decay * p_{t-1}``.
      linger: int, N: number of calm steps over which pain lingers; then ``p = 0``.
      cap: float ``>= 0``, upper bound of the pain level.
      sigma: float, noise mode: std of the additive noise is ``sigma * p``.
      dropout_rate: float, dropout mode: drop probability ``min(rate * p, max)``.
      dropout_max: float in ``[0, 1)``, cap of the drop probability.
      mode: int, ``OFF`` (0), ``NOISE`` (1) or ``DROPOUT`` (2); traced, so one
        compiled network serves all modes.
      shape: int, ``LINEAR`` (0) or ``INVERSE`` (1) instant pain.
    """

    threshold: float = 0.0
    scale: float = 1.0
    decay: float = 0.8
    linger: int = 5
    cap: float = 10.0
    sigma: float = 0.5
    dropout_rate: float = 0.2
    dropout_max: float = 0.5
    mode: int = 0
    shape: int = 0


@struct.dataclass
class PainState:
    """Pain carried through time by the learner (or by :class:`PainWrapper`).

    Attributes:
      level: float32 ``(...,)``, current pain ``p_t >= 0``.
      calm: int32 ``(...,)``, calm steps since the reward was last below threshold
        (saturating at ``CALM_MAX``).
    """

    level: jax.Array
    calm: jax.Array


def pain_init(shape: tuple[int, ...] = ()) -> PainState:
    """No pain: level 0 and ``calm`` already past any N (``CALM_MAX``)."""
    return PainState(
        level=jnp.zeros(shape, jnp.float32),
        calm=jnp.full(shape, CALM_MAX, jnp.int32),
    )


def instant_pain(reward: jax.Array, params: PainParams) -> jax.Array:
    """``q_t`` (float32, shape of ``reward`` broadcast with params), 0 when calm."""
    reward = jnp.asarray(reward, jnp.float32)
    deficit = jnp.maximum(jnp.asarray(params.threshold, jnp.float32) - reward, 0.0)
    linear = deficit
    inverse = 1.0 - 1.0 / (1.0 + deficit)  # deficit >= 0, so no division by zero
    shaped = jnp.where(jnp.asarray(params.shape) == INVERSE, inverse, linear)
    return jnp.asarray(params.scale, jnp.float32) * shaped


def pain_update(state: PainState, reward: jax.Array, params: PainParams) -> PainState:
    """One step of the pain dynamics (pure; jit/vmap/grad friendly).

    Args:
      state: ``PainState`` with fields of shape ``S``.
      reward: float ``S`` (or broadcastable), the reward ``r_t`` just received.
      params: ``PainParams`` whose fields broadcast against ``S``.

    Returns:
      ``PainState`` of the broadcast shape: ``level`` float32, ``calm`` int32.
    """
    reward = jnp.asarray(reward, jnp.float32)
    hurt = reward < jnp.asarray(params.threshold, jnp.float32)
    calm = jnp.where(hurt, 0, jnp.minimum(state.calm, CALM_MAX - 1) + 1)
    calm = calm.astype(jnp.int32)
    kept = jnp.maximum(
        instant_pain(reward, params),
        jnp.asarray(params.decay, jnp.float32) * state.level,
    )
    # A painful step has calm == 0 <= linger, so it always keeps max(q, decay * p).
    level = jnp.where(calm <= jnp.asarray(params.linger), kept, 0.0)
    level = jnp.minimum(level, jnp.asarray(params.cap, jnp.float32))
    return PainState(level=level.astype(jnp.float32), calm=calm)


def pain_trace(
    rewards: jax.Array, params: PainParams, state: PainState | None = None
) -> tuple[PainState, jax.Array]:
    """Run :func:`pain_update` along the leading (time) axis of ``rewards``.

    Args:
      rewards: float ``(T, *S)``.
      params: ``PainParams`` broadcasting against ``S``.
      state: initial state of shape ``S`` (default :func:`pain_init`).

    Returns:
      ``(final_state, levels)`` with ``levels`` float32 ``(T, *S)``: ``levels[t]`` is
      ``p_t``, the pain after reward ``r_t``.
    """
    rewards = jnp.asarray(rewards, jnp.float32)
    if state is None:
        state = pain_init(rewards.shape[1:])

    def step(s, r):
        s = pain_update(s, r, params)
        return s, s.level

    return jax.lax.scan(step, state, rewards)


def drop_probability(level: jax.Array, params: PainParams) -> jax.Array:
    """Dropout-mode drop probability ``min(dropout_rate * p, dropout_max)`` (>= 0)."""
    rate = jnp.asarray(params.dropout_rate, jnp.float32) * level
    return jnp.clip(rate, 0.0, jnp.asarray(params.dropout_max, jnp.float32))


def validate_pain_params(params: PainParams) -> None:
    """Raise ``ValueError`` for concrete settings outside the model's domain."""
    import numpy as np

    checks = [
        ("scale", lambda v: v >= 0, "scale must be >= 0"),
        ("decay", lambda v: (v >= 0) & (v <= 1), "decay must be in [0, 1]"),
        ("linger", lambda v: v >= 0, "linger must be >= 0"),
        ("cap", lambda v: v >= 0, "cap must be >= 0"),
        ("sigma", lambda v: v >= 0, "sigma must be >= 0"),
        ("dropout_rate", lambda v: v >= 0, "dropout_rate must be >= 0"),
        ("dropout_max", lambda v: (v >= 0) & (v < 1), "dropout_max must be in [0, 1)"),
        ("mode", lambda v: np.isin(v, (OFF, NOISE, DROPOUT)), "mode must be 0, 1 or 2"),
        ("shape", lambda v: np.isin(v, (LINEAR, INVERSE)), "shape must be 0 or 1"),
    ]
    for name, ok, message in checks:
        value = getattr(params, name)
        if isinstance(value, jax.core.Tracer):
            continue
        arr = np.asarray(value)
        if not np.all(ok(arr)):
            raise ValueError(f"invalid PainParams: {message} (got {arr.tolist()})")
