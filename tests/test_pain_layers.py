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
from pain_jax.pain.layers import (
    Pain,
    PainDropout,
    PainNoise,
    gaussian_table,
    pain_uniforms,
)
from pain_jax.prng import counter_blocks

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
    # Noise takes 2**16 values, so a few equal elements happen by chance (birthday:
    # about n**2 / 2**17 = 7 pairs here); one shared row alone would add 8.
    assert flat.size - len(np.unique(flat)) < 4 * flat.size**2 / 2**17
    # Rows are uncorrelated on average.
    corr = np.corrcoef(flat)
    off_diag = corr[~np.eye(len(flat), dtype=bool)]
    assert abs(off_diag.mean()) < 0.05
    # Same seed, same noise; another seed, other noise.
    again = np.asarray(_noise_rollout(KEY, members, steps, agents * envs))
    np.testing.assert_array_equal(noise, again)
    other = np.asarray(_noise_rollout(jax.random.key(1), members, steps, agents * envs))
    assert not np.any(np.all(other == noise, axis=-1))


# ----- the random numbers (counter-mode Threefry, 16-bit uniforms) ---------------------
_uniforms = jax.jit(pain_uniforms, static_argnums=1)


def test_pain_uniforms__layout_is_the_16_bit_halves_of_counter_blocks():
    # (2, 8): q = 2 blocks per row; columns j, j+2, j+4, j+6 share block j.
    u = np.asarray(_uniforms(KEY, (2, 8)))
    hi, lo = (np.asarray(w) for w in counter_blocks(KEY, (2, 2)))
    expected = np.concatenate([hi >> 16, hi & 0xFFFF, lo >> 16, lo & 0xFFFF], axis=1)
    np.testing.assert_array_equal(u, expected)
    # Width not a multiple of 4 (logits): the leftover halves are unused.
    np.testing.assert_array_equal(_uniforms(KEY, (2, 5)), expected[:, [0, 1, 2, 3, 4]])


def test_pain_uniforms__no_draw_is_all_zeros():
    u = jax.jit(lambda d: pain_uniforms(KEY, (3, 8), d))(jnp.bool_(False))
    np.testing.assert_array_equal(u, 0)


def test_pain_uniforms__uniform_over_2_pow_16():
    u = np.asarray(_uniforms(KEY, (256, 1024))).ravel()
    assert u.min() >= 0 and u.max() < 2**16
    # Chi-square over 64 equal bins of the top and of the bottom 6 bits (63 dof:
    # mean 63, std 11; 130 is beyond 6 std).
    for bins in (u >> 10, u & 63):
        counts = np.bincount(bins, minlength=64)
        expected = u.size / 64
        assert np.sum((counts - expected) ** 2 / expected) < 130


def test_gaussian_table__symmetric_increasing_unit_variance_quantiles():
    t = gaussian_table().astype(np.float64)
    assert t.shape == (2**16,) and gaussian_table().dtype == np.float32
    np.testing.assert_array_equal(t, -t[::-1])
    assert np.all(np.diff(t) > 0)
    np.testing.assert_allclose(np.mean(t**2), 1.0, rtol=1e-6)
    # Midpoint quantiles: the median pair straddles 0 at +-0.5/2**16 / phi(0).
    np.testing.assert_allclose(t[2**15], 0.5 / 2**16 * np.sqrt(2 * np.pi), rtol=1e-3)
    assert 4.3 < t[-1] < 4.35  # tail cut: P(|z| > 4.32) = 1.5e-5 for a true normal


@functools.cache
def _unit_noise():
    x = jnp.zeros((400, 512))  # 204800 draws, one key
    params = PARAMS.replace(sigma=1.0)
    return np.asarray(PainNoise().apply({}, x, jnp.ones(400), params, rngs={"pain": KEY}))


def test_pain_noise__is_standard_gaussian():
    from scipy import stats

    z = _unit_noise().ravel()
    assert abs(z.mean()) < 5 / np.sqrt(z.size)
    assert abs(z.std() - 1.0) < 0.01
    # Kolmogorov-Smirnov against N(0, 1): n = 2e5, the 1% critical value is 0.0036.
    assert stats.kstest(z, "norm").statistic < 0.0036
    # Tails: P(|z| > 2) = 0.0455, P(|z| > 3) = 0.0027.
    assert abs(np.mean(np.abs(z) > 2) - 0.0455) < 0.003
    assert abs(np.mean(np.abs(z) > 3) - 0.0027) < 0.0006


def test_pain_noise__rows_and_block_mates_uncorrelated():
    z = _unit_noise()
    # 400 rows: off-diagonal correlations have std 1/sqrt(512) = 0.044.
    corr = np.corrcoef(z)
    off = corr[~np.eye(len(z), dtype=bool)]
    assert abs(off.mean()) < 0.005 and np.abs(off).max() < 0.25
    # Columns j, j + 128, j + 256, j + 384 come from one hash block: uncorrelated.
    q = z.shape[1] // 4
    for a, b in ((0, 1), (0, 2), (0, 3), (1, 2), (2, 3)):
        r = np.mean(z[:, a * q : (a + 1) * q] * z[:, b * q : (b + 1) * q])
        assert abs(r) < 5 / np.sqrt(z.size / 4)


def test_pain__deterministic_per_key():
    x = jax.random.normal(KEY, (4, 8))
    for mode in (NOISE, DROPOUT):
        p = PARAMS.replace(mode=mode)
        a = pain(x, jnp.ones(4), p, KEY)
        np.testing.assert_array_equal(a, pain(x, jnp.ones(4), p, KEY))
        assert not np.array_equal(a, pain(x, jnp.ones(4), p, jax.random.key(1)))


def test_pain_dropout__masks_independent_across_rows_and_columns():
    x = jnp.ones((200, 400))
    y = np.asarray(
        PainDropout().apply({}, x, jnp.full(200, 2.0), PARAMS, rngs={"pain": KEY})
    )
    kept = (y != 0).astype(float)  # drop rate 0.4
    assert abs(1 - kept.mean() - 0.4) < 0.005
    # Pairwise co-kept rate of rows / of block-mate columns is 0.6**2 if independent.
    assert abs(np.mean(kept[:-1] * kept[1:]) - 0.36) < 0.01
    assert abs(np.mean(kept[:, :100] * kept[:, 100:200]) - 0.36) < 0.01
