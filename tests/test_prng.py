"""pain_jax.prng: the unrolled Threefry-2x32 is bit-identical to JAX's, counter blocks
follow the layout of ``jax.random.bits``, and complex64 packing keeps every bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.extend.random import threefry_2x32

from pain_jax import prng
from pain_jax.envs import api

u32 = st.integers(0, 2**32 - 1)
_threefry = jax.jit(prng.threefry2x32)


@settings(max_examples=25, deadline=None)
@given(k0=u32, k1=u32, counts=st.lists(u32, min_size=2, max_size=2).map(tuple))
def test_threefry2x32__matches_jax_threefry_bit_for_bit(k0, k1, counts):
    # jax's threefry_2x32 hashes count[:n/2] with count[n/2:] and concatenates.
    count = jnp.asarray(counts * 4, jnp.uint32)  # 8 words: 4 blocks
    theirs = threefry_2x32(jnp.asarray([k0, k1], jnp.uint32), count)
    x0, x1 = _threefry(jnp.uint32(k0), jnp.uint32(k1), count[:4], count[4:])
    np.testing.assert_array_equal(np.concatenate([x0, x1]), theirs)


def test_threefry2x32__known_answer_of_the_spec():
    # Random123 known-answer test for Threefry-2x32-20 (key and counter all ones).
    ones = jnp.uint32(0xFFFFFFFF)
    x0, x1 = prng.threefry2x32(ones, ones, ones, ones)
    assert (int(x0), int(x1)) == (0x1CB996FC, 0xBB002BE7)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 1, 3)])
@pytest.mark.parametrize("typed", [True, False])
def test_counter_blocks__xor_is_jax_random_bits(shape, typed):
    key = jax.random.key(11) if typed else jax.random.PRNGKey(11)
    hi, lo = prng.counter_blocks(key, shape)
    assert hi.shape == lo.shape == shape and hi.dtype == jnp.uint32
    np.testing.assert_array_equal(hi ^ lo, jax.random.bits(key, shape, jnp.uint32))


def test_counter_blocks__vmap_over_keys_is_per_key():
    keys = jax.random.split(jax.random.key(3), 4)
    hi, lo = jax.vmap(lambda k: prng.counter_blocks(k, (2, 3)))(keys)
    for i in range(4):
        h, low = prng.counter_blocks(keys[i], (2, 3))
        np.testing.assert_array_equal(hi[i], h)
        np.testing.assert_array_equal(lo[i], low)
    assert len({bytes(np.asarray(r)) for r in hi.reshape(4, -1)}) == 4


def test_counter_blocks__rejects_other_key_implementations():
    with pytest.raises(ValueError, match="threefry"):
        prng.counter_blocks(jax.random.key(0, impl="rbg"), (2,))


def test_pack_words__round_trip_keeps_every_bit_pattern():
    special = [0, 1, 0x7F800000, 0xFF800000, 0x7F800001, 0xFF800001, 0x7FC00000]
    special += [0x7FBFFFFF, 0xFFFFFFFF, 0x80000000, 0x00000001, 0x807FFFFF]
    rand = np.random.default_rng(0).integers(0, 2**32, 4096, dtype=np.uint32)
    hi = jnp.asarray(np.concatenate([special, rand]), jnp.uint32)
    lo = hi[::-1]
    back = jax.jit(lambda a, b: prng.unpack_words(prng.pack_words(a, b)))(hi, lo)
    np.testing.assert_array_equal(back[0], hi)
    np.testing.assert_array_equal(back[1], lo)


def test_split_key_and_random_words__env_api_reexports_prng():
    # The environment core keeps importing them from pain_jax.envs.api.
    assert api.split_key is prng.split_key
    assert api.random_words is prng.random_words
    assert api.threefry2x32 is prng.threefry2x32
    key = jax.random.key(5)
    np.testing.assert_array_equal(
        jax.random.key_data(prng.split_key(key, 3)),
        jax.random.key_data(jax.random.split(key, 3)),
    )
