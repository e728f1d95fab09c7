"""Pain layers: exact identity at p = 0, the noise and dropout statistics, traced level
and mode under jit, stop-gradient, and independent noise per agent / env copy /
population member / timestep."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pain_jax.pain.acting import split_keys
from pain_jax.pain.dynamics import DROPOUT, NOISE, OFF, PainParams
from pain_jax.pain.layers import Pain, PainDropout, PainNoise

KEY = jax.random.key(0)
PARAMS = PainParams(sigma=0.5, dropout_rate=0.2, dropout_max=0.5)


@chex.assert_max_traces(n=1)
def _pain(x, level, params, key):
    return Pain().apply({}, x, level, params, rngs={"pain": key})


_pain_jit = jax.jit(_pain)
_INTS = ("linger", "mode", "shape")


def canon(params):
    """Fixed dtypes (no weak types), so every call below hits the one trace."""
    return params.replace(
        **{
            f: jnp.asarray(getattr(params, f), jnp.int32 if f in _INTS else jnp.float32)
            for f in params.__dataclass_fields__
        }
    )


def pain(x, level, params, key):
    x = jnp.asarray(x, jnp.float32)
    return _pain_jit(x, jnp.asarray(level, jnp.float32), canon(params), key)


def test_pain__level_zero_is_bit_identical_in_every_mode():
    # Include -0.0, inf and a huge value: x + 0 * eps would turn -0.0 into +0.0.
    special = jnp.array([-0.0, 1.5, -jnp.inf, 3e38, 0.1, -2.0, 7.0, -0.0], jnp.float32)
    x = jnp.tile(special, (4, 1))  # every call of `pain` uses (4, 8): one trace
    for mode in (OFF, NOISE, DROPOUT):
        y = pain(x, jnp.zeros(4), PARAMS.replace(mode=mode), KEY)
        assert np.asarray(y).tobytes() == np.asarray(x).tobytes(), mode


def test_pain__mode_off_is_identity_at_any_level():
    x = jax.random.normal(KEY, (4, 8))
    y = pain(x, jnp.full(4, 3.0), PARAMS.replace(mode=OFF), KEY)
    assert np.asarray(y).tobytes() == np.asarray(x).tobytes()


def test_pain__zero_rows_untouched_in_a_mixed_batch():
    x = jax.random.normal(KEY, (4, 8))
    level = jnp.array([0.0, 1.0, 0.0, 2.0])
    for mode in (NOISE, DROPOUT):
        y = np.asarray(pain(x, level, PARAMS.replace(mode=mode), KEY))
        np.testing.assert_array_equal(y[[0, 2]], np.asarray(x)[[0, 2]])
        assert np.all(np.any(y[[1, 3]] != np.asarray(x)[[1, 3]], axis=1))


def test_pain_noise__std_is_sigma_times_level():
    x = jnp.zeros((2, 50_000))
    y = PainNoise().apply({}, x, jnp.array([1.0, 4.0]), PARAMS, rngs={"pain": KEY})
    # sigma 0.5: std 0.5 and 2.0; mean 0.  (5 standard errors of tolerance.)
    np.testing.assert_allclose(np.std(y, axis=1), [0.5, 2.0], rtol=0.02)
    np.testing.assert_allclose(np.mean(y, axis=1), [0.0, 0.0], atol=0.05)


def test_pain_dropout__drop_rate_and_rescaled_survivors():
    x = jnp.ones((3, 40_000))
    # rate 0.2 * p: p = 1 -> 0.2, p = 2 -> 0.4, p = 5 -> capped at 0.5.
    y = np.asarray(
        PainDropout().apply({}, x, jnp.array([1.0, 2.0, 5.0]), PARAMS, rngs={"pain": KEY})
    )
    rates = [0.2, 0.4, 0.5]
    for row, rate in zip(y, rates, strict=True):
        assert abs(np.mean(row == 0) - rate) < 0.01
        np.testing.assert_allclose(row[row != 0], 1.0 / (1.0 - rate), rtol=1e-6)
        assert abs(np.mean(row) - 1.0) < 0.02  # survivors rescaled: mean unchanged


def test_pain__traced_level_and_mode_one_compile():
    x = jax.random.normal(KEY, (4, 8))
    outs = []
    for mode in (OFF, NOISE, DROPOUT):
        for p in (0.0, 0.5, 2.0):
            outs.append(pain(x, jnp.full(4, p), PARAMS.replace(mode=mode), KEY))
    # _pain is traced once (assert_max_traces); noise/dropout change the output.
    assert not np.array_equal(outs[4], x) and not np.array_equal(outs[7], x)


def test_pain__mode_selects_the_same_values_as_the_layers():
    x = jax.random.normal(KEY, (4, 8))
    level = jnp.array([0.5, 1.0, 2.0, 0.25])
    for mode, layer in ((NOISE, PainNoise()), (DROPOUT, PainDropout())):
        # Both take the first key of the "pain" stream, so equal keys give equal draws.
        y = pain(x, level, PARAMS.replace(mode=mode), KEY)
        z = layer.apply({}, x, level, PARAMS, rngs={"pain": KEY})
        # Same draws; jit vs eager may round x + std * eps differently (fma).
        np.testing.assert_allclose(y, z, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(y == 0, z == 0)


def test_pain__vmap_over_params_mode_matches_unbatched():
    x = jax.random.normal(KEY, (4, 8))
    modes = PARAMS.replace(mode=jnp.array([OFF, NOISE, DROPOUT]))
    axes = jax.tree.map(lambda v: 0 if jnp.ndim(v) else None, modes)
    ys = jax.jit(
        jax.vmap(lambda p: _pain.__wrapped__(x, jnp.ones(4), p, KEY), in_axes=(axes,))
    )(modes)
    for i, mode in enumerate((OFF, NOISE, DROPOUT)):
        np.testing.assert_allclose(
            ys[i], pain(x, jnp.ones(4), PARAMS.replace(mode=mode), KEY), rtol=1e-6
        )


def test_pain__level_is_not_learnable():
    x = jax.random.normal(KEY, (2, 4))

    def f(level):
        return jnp.sum(
            Pain().apply({}, x, level, PARAMS.replace(mode=NOISE), rngs={"pain": KEY})
            ** 2
        )

    g = jax.grad(f)(jnp.array([1.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_pain__level_shape_must_prefix_activations():
    with pytest.raises(ValueError, match="prefix"):
        Pain().apply({}, jnp.zeros((2, 4)), jnp.zeros(3), PARAMS, rngs={"pain": KEY})


def test_pain__spatial_activations_one_level_per_row():
    x = jnp.zeros((2, 3, 3, 4))
    y = PainNoise().apply({}, x, jnp.array([0.0, 1.0]), PARAMS, rngs={"pain": KEY})
    np.testing.assert_array_equal(y[0], 0.0)
    assert np.all(y[1] != 0.0)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _noise_rollout(root, members, steps, rows, width=8):
    """Pain noise drawn as a population rollout draws it: one key per member, split
    per timestep, then one pain key per row (agent x env copy), vmapped over members.
    Returns noise ``(members, steps, rows, width)``."""

    def member(key):
        def step(key, _):
            key, step_key = jax.random.split(key)
            _, pain_keys = split_keys(step_key, rows)
            draw = jax.vmap(
                lambda k: PainNoise().apply(
                    {}, jnp.zeros((1, width)), jnp.ones(1), PARAMS, rngs={"pain": k}
                )[0]
            )
            return key, draw(pain_keys)

        return jax.lax.scan(step, key, None, length=steps)[1]

    return jax.vmap(member)(jax.random.split(root, members))


def test_pain_noise__independent_across_members_steps_agents_envs():
    members, steps, agents, envs = 3, 4, 2, 5
    noise = np.asarray(_noise_rollout(KEY, members, steps, agents * envs))
    flat = noise.reshape(-1, noise.shape[-1])
    assert len({row.tobytes() for row in flat}) == flat.shape[0]  # no two rows share
    # No element value shared either, and rows are uncorrelated on average.
    assert len(np.unique(flat)) == flat.size
    corr = np.corrcoef(flat)
    off_diag = corr[~np.eye(len(flat), dtype=bool)]
    assert abs(off_diag.mean()) < 0.05
    # Same seed, same noise; another seed, other noise.
    again = np.asarray(_noise_rollout(KEY, members, steps, agents * envs))
    np.testing.assert_array_equal(noise, again)
    other = np.asarray(_noise_rollout(jax.random.key(1), members, steps, agents * envs))
    assert not np.any(np.all(other == noise, axis=-1))
