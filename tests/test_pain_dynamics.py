"""Pain dynamics: hand-computed traces, lingering for exactly N calm steps, the cap,
the inverse shape, and traced sweeps (one jitted vmap)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pain_jax.pain.dynamics import (
    CALM_MAX,
    INVERSE,
    LINEAR,
    PainParams,
    drop_probability,
    instant_pain,
    pain_init,
    pain_trace,
    pain_update,
    validate_pain_params,
)

_trace = jax.jit(pain_trace)


def reference_trace(rewards, threshold, scale, decay, linger, cap, shape=LINEAR):
    """Slow per-step reference straight from the written model."""
    level, since, out = 0.0, None, []
    for r in rewards:
        d = max(0.0, threshold - r)
        q = scale * (d if shape == LINEAR else 1 - 1 / (1 + d))
        since = 0 if r < threshold else (None if since is None else since + 1)
        if since is not None and since <= linger:
            level = max(q, decay * level)
        else:
            level = 0.0
        level = min(level, cap)
        out.append(level)
    return np.array(out, np.float32)


def test_pain_init__zero_and_calm():
    s = pain_init((3,))
    chex.assert_trees_all_equal(s.level, jnp.zeros(3, jnp.float32))
    assert s.calm.dtype == jnp.int32 and s.level.dtype == jnp.float32
    assert np.all(np.asarray(s.calm) == CALM_MAX)


def test_pain_update__hand_computed_trace():
    params = PainParams(threshold=0.0, scale=1.0, decay=0.5, linger=2, cap=10.0)
    rewards = jnp.array([-2.0, 1.0, 1.0, 1.0, -1.0, 0.0, -0.2, 5.0])
    final, levels = _trace(rewards, params)
    # -2 hurts 2; lingers 1, 0.5 over N = 2 calm steps; third calm step 0; -1 hurts 1;
    # r = 0 equals the threshold (calm) 0.5; -0.2 hurts 0.2 < lingering 0.25; 0.125.
    expected = [2.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.25, 0.125]
    np.testing.assert_allclose(levels, expected, rtol=0, atol=1e-7)
    assert int(final.calm) == 1


def test_pain_update__calm_counter():
    params = PainParams(threshold=0.0, linger=2)
    state = pain_init()
    calms = []
    for r in [-1.0, 1.0, 1.0, 1.0, -1.0, 0.0]:
        state = pain_update(state, r, params)
        calms.append(int(state.calm))
    assert calms == [0, 1, 2, 3, 0, 1]


def test_pain_update__cap_applies_to_instant_and_lingering():
    params = PainParams(threshold=0.0, scale=2.0, decay=1.0, linger=3, cap=1.5)
    _, levels = _trace(jnp.array([-3.0, 1.0, 1.0, 1.0, 1.0]), params)
    # q = 6 capped at 1.5; decay 1 keeps 1.5 for exactly 3 calm steps, then 0.
    np.testing.assert_array_equal(levels, np.array([1.5, 1.5, 1.5, 1.5, 0.0], np.float32))


@settings(max_examples=40, deadline=None)
@given(
    linger=st.integers(0, 6),
    decay=st.floats(0.1, 1.0),
    deficit=st.floats(0.1, 5.0),
)
def test_pain_update__lingers_exactly_n_calm_steps(linger, decay, deficit):
    params = PainParams(threshold=0.0, scale=1.0, decay=decay, linger=linger, cap=100.0)
    rewards = jnp.array([-deficit] + [1.0] * 8, jnp.float32)
    _, levels = _trace(rewards, params)
    levels = np.asarray(levels)
    q = np.float32(deficit)
    for k in range(1, 9):
        if k <= linger:
            np.testing.assert_allclose(levels[k], q * np.float32(decay) ** k, rtol=1e-5)
            assert levels[k] > 0
        else:
            assert levels[k] == 0.0, (k, levels)


def test_instant_pain__inverse_shape_hand_computed():
    params = PainParams(threshold=1.0, scale=2.0, shape=INVERSE)
    q = instant_pain(jnp.array([-1.0, 0.5, 1.0, 3.0]), params)
    np.testing.assert_allclose(q, [4 / 3, 2 / 3, 0.0, 0.0], rtol=1e-6)
    lin = instant_pain(jnp.array([-1.0, 0.5, 1.0, 3.0]), params.replace(shape=LINEAR))
    np.testing.assert_allclose(lin, [4.0, 1.0, 0.0, 0.0], rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    r=st.lists(st.floats(-10, 10, width=32), min_size=2, max_size=10),
    shape=st.sampled_from([LINEAR, INVERSE]),
)
def test_instant_pain__monotone_nonincreasing_in_reward(r, shape):
    r = np.sort(np.asarray(r, np.float32))
    q = np.asarray(instant_pain(r, PainParams(threshold=1.0, scale=3.0, shape=shape)))
    assert np.all(np.diff(q) <= 0) and np.all(q >= 0)
    if shape == INVERSE:
        assert np.all(q < 3.0)


@settings(max_examples=25, deadline=None)
@given(
    rewards=st.lists(st.floats(-3, 3, width=32), min_size=1, max_size=12),
    threshold=st.floats(-1, 1),
    scale=st.floats(0, 3),
    decay=st.floats(0, 1),
    linger=st.integers(0, 4),
    cap=st.floats(0, 4),
    shape=st.sampled_from([LINEAR, INVERSE]),
)
def test_pain_trace__matches_reference(
    rewards, threshold, scale, decay, linger, cap, shape
):
    params = PainParams(
        threshold=threshold, scale=scale, decay=decay, linger=linger, cap=cap, shape=shape
    )
    _, levels = _trace(jnp.asarray(rewards, jnp.float32), params)
    expected = reference_trace(
        np.asarray(rewards, np.float32),
        np.float32(threshold),
        scale,
        decay,
        linger,
        cap,
        shape,
    )
    np.testing.assert_allclose(levels, expected, rtol=1e-5, atol=1e-6)


def test_pain_update__per_agent_params_broadcast():
    params = PainParams(threshold=jnp.array([0.0, 2.0]), scale=jnp.array([1.0, 0.5]))
    s = pain_update(pain_init((2,)), jnp.array([1.0, 1.0]), params)
    np.testing.assert_allclose(s.level, [0.0, 0.5])


@chex.assert_max_traces(n=1)
def _sweep(rewards, params):
    # Map the fields that carry the sweep axis, share the others.
    axes = jax.tree.map(lambda x: 0 if jnp.ndim(x) else None, params)
    return jax.vmap(lambda p: pain_trace(rewards, p)[1], in_axes=(axes,))(params)


_sweep_jit = jax.jit(_sweep)


def test_pain_sweep__eight_thresholds_one_jitted_vmap():
    thresholds = jnp.linspace(-1.0, 2.5, 8)
    params = PainParams(threshold=thresholds, decay=0.5, linger=2)
    rewards = jnp.array([0.0, 1.0, -1.0, 2.0, 2.0, 2.0, 2.0], jnp.float32)
    levels = _sweep_jit(rewards, params)
    assert levels.shape == (8, 7)
    for i, th in enumerate(np.asarray(thresholds)):
        np.testing.assert_allclose(
            levels[i],
            reference_trace(np.asarray(rewards), th, 1.0, 0.5, 2, 10.0),
            rtol=1e-6,
            atol=1e-7,
        )
    # A second sweep with other values reuses the compiled function (one trace).
    _sweep_jit(rewards + 1.0, params.replace(threshold=thresholds * 2))
    assert len({tuple(np.asarray(r)) for r in levels}) > 4  # thresholds matter


def test_pain_sweep__every_field_traced():
    n = 8
    vals = np.linspace(0.0, 1.0, n, dtype=np.float32)
    params = PainParams(
        threshold=jnp.asarray(vals),
        scale=jnp.asarray(1 + vals),
        decay=jnp.asarray(vals),
        linger=jnp.arange(n, dtype=jnp.int32),
        cap=jnp.asarray(2 + vals),
        sigma=jnp.asarray(vals),
        dropout_rate=jnp.asarray(vals),
        dropout_max=jnp.asarray(vals / 2),
        mode=jnp.arange(n, dtype=jnp.int32) % 3,
        shape=jnp.arange(n, dtype=jnp.int32) % 2,
    )
    levels = jax.jit(jax.vmap(lambda p: pain_trace(jnp.array([-1.0, 1.0, 1.0]), p)[1]))(
        params
    )
    for i in range(n):
        expected = reference_trace(
            [-1.0, 1.0, 1.0], vals[i], 1 + vals[i], vals[i], i, 2 + vals[i], i % 2
        )
        np.testing.assert_allclose(levels[i], expected, rtol=1e-5, atol=1e-6)


def test_drop_probability__min_of_rate_and_max():
    params = PainParams(dropout_rate=0.2, dropout_max=0.5)
    np.testing.assert_allclose(
        drop_probability(jnp.array([0.0, 1.0, 2.0, 5.0]), params), [0.0, 0.2, 0.4, 0.5]
    )


@pytest.mark.parametrize(
    "field,value",
    [("decay", 1.5), ("cap", -1.0), ("dropout_max", 1.0), ("mode", 3), ("linger", -1)],
)
def test_validate_pain_params__rejects_out_of_domain(field, value):
    validate_pain_params(PainParams())
    with pytest.raises(ValueError, match=field):
        validate_pain_params(PainParams().replace(**{field: value}))
