"""Coin Game: hand-placed scenarios (objects placed explicitly, never a seed's draws),
invariants as hypothesis properties, and the API contract for this environment."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.extend.random import threefry_2x32

import pain_jax as pj
from pain_jax.envs.api import random_words, split_key
from pain_jax.envs.coin_game import (
    DOWN,
    LEFT,
    RIGHT,
    STAY,
    UP,
    CoinGame,
    CoinGameState,
    _below,
    _free_cell,
)

ENV, PARAMS = pj.make("coin_game")
PER_AGENT = PARAMS.replace(coin_per_agent=True)
STEP = jax.jit(ENV.step)
RESET = jax.jit(ENV.reset)
KEY = jax.random.key(0)


def state_of(agents, coins, present=None, time=0, num_agents=None):
    """A state with agents and coins at the given (row, col) cells."""
    a = num_agents or len(agents)
    zeros = jnp.zeros((a,), jnp.int32)
    return CoinGameState(
        agent_pos=jnp.asarray(agents, jnp.int32),
        coin_pos=jnp.asarray(coins, jnp.int32),
        coin_present=jnp.asarray([True] * a if present is None else present),
        time=jnp.asarray(time, jnp.int32),
        episode_return=jnp.zeros((a,), jnp.float32),
        pickups=zeros,
        own_pickups=zeros,
        coins_lost=zeros,
    )


def act(*a):
    return jnp.asarray(a, jnp.int32)


def cells_of(pos):
    return [int(r) * 3 + int(c) for r, c in np.asarray(pos)]


# ----- movement (C01) and wrap-around ---------------------------------------------
def test_coin_game__stay_keeps_positions_and_pays_nothing():
    s = state_of([(0, 0), (1, 1)], [(2, 2), (2, 0)])
    _, s2, r, done, _ = STEP(KEY, s, act(STAY, STAY), PER_AGENT)
    np.testing.assert_array_equal(s2.agent_pos, s.agent_pos)
    np.testing.assert_array_equal(s2.coin_pos, s.coin_pos)
    np.testing.assert_array_equal(r, [0.0, 0.0])
    assert not bool(done) and int(s2.time) == 1


@pytest.mark.parametrize("order", [(UP, LEFT), (LEFT, UP)])
def test_coin_game__each_agent_moves_by_its_own_action(order):
    s = state_of([(1, 1), (1, 1)], [(0, 0), (2, 2)])
    _, s2, _, _, _ = STEP(KEY, s, act(*order), PER_AGENT)
    expected = {UP: (0, 1), LEFT: (1, 0)}
    np.testing.assert_array_equal(s2.agent_pos, [expected[order[0]], expected[order[1]]])


@pytest.mark.parametrize(
    "start, action, end",
    [((0, 0), UP, (2, 0)), ((0, 0), LEFT, (0, 2)), ((2, 2), DOWN, (0, 2)),
     ((2, 2), RIGHT, (2, 0)), ((1, 1), DOWN, (2, 1)), ((1, 1), RIGHT, (1, 2))],
)  # fmt: skip
def test_coin_game__moves_wrap_around_the_grid(start, action, end):
    s = state_of([start, (1, 1) if start != (1, 1) else (0, 0)], [(2, 0), (0, 0)])
    s = s.replace(coin_present=jnp.array([False, False]))  # nothing to pick up
    _, s2, _, _, _ = STEP(KEY, s, act(action, STAY), PARAMS)
    assert tuple(np.asarray(s2.agent_pos[0])) == end


# ----- rewards ----------------------------------------------------------------------
def test_coin_game__own_and_other_coin_pay_the_configured_amounts():
    s = state_of([(0, 0), (2, 2)], [(0, 1), (2, 0)])  # each steps right onto a coin
    _, s2, r, _, info = STEP(KEY, s, act(RIGHT, RIGHT), PER_AGENT)
    # agent 0 takes its own coin; agent 1 wraps from (2, 2) onto its own at (2, 0)
    np.testing.assert_array_equal(r, [1.0, 1.0])
    s = state_of([(0, 0), (2, 2)], [(2, 0), (0, 1)])  # now each takes the other's coin
    swept = PER_AGENT.replace(
        own_coin_reward=2.0, other_coin_reward=3.0, owner_penalty=-5.0
    )
    _, s2, r, _, info = STEP(KEY, s, act(RIGHT, RIGHT), swept)
    np.testing.assert_array_equal(r, [3.0 - 5.0, 3.0 - 5.0])
    np.testing.assert_array_equal(s2.pickups, [1, 1])
    np.testing.assert_array_equal(s2.own_pickups, [0, 0])
    np.testing.assert_array_equal(s2.coins_lost, [1, 1])


def test_coin_game__simultaneous_arrival_gives_mirrored_rewards():
    # Both agents step onto agent 0's coin at (1, 1) from opposite sides.
    s = state_of([(1, 0), (1, 2)], [(1, 1), (0, 0)])
    _, _, r, _, _ = STEP(KEY, s, act(RIGHT, LEFT), PER_AGENT)
    np.testing.assert_array_equal(r, [1.0 - 2.0, 1.0])  # owner: pickup + penalty
    # The mirror image: agent indices swapped, coin colours swapped.
    m = state_of([(1, 2), (1, 0)], [(0, 0), (1, 1)])
    _, _, rm, _, _ = STEP(KEY, m, act(LEFT, RIGHT), PER_AGENT)
    np.testing.assert_array_equal(rm, [1.0, 1.0 - 2.0])
    # And with the other coin colour instead: the roles flip.
    c = state_of([(1, 0), (1, 2)], [(0, 0), (1, 1)])
    _, _, rc, _, _ = STEP(KEY, c, act(RIGHT, LEFT), PER_AGENT)
    np.testing.assert_array_equal(rc, [1.0, 1.0 - 2.0])


def test_coin_game__three_players_penalty_per_other_coloured_picker():
    env, params = pj.make("coin_game", num_agents=3, coin_per_agent=True)
    s = state_of([(1, 0), (1, 2), (0, 1)], [(2, 2), (2, 0), (1, 1)])  # coin 2 at centre
    step = jax.jit(env.step)
    _, s2, r, _, _ = step(KEY, s, act(RIGHT, LEFT, STAY), params)
    np.testing.assert_array_equal(r, [1.0, 1.0, -4.0])
    np.testing.assert_array_equal(s2.coins_lost, [0, 0, 2])
    _, s3, r, _, _ = step(KEY, s, act(RIGHT, LEFT, DOWN), params)
    np.testing.assert_array_equal(r, [1.0, 1.0, 1.0 - 4.0])
    np.testing.assert_array_equal(s3.own_pickups, [0, 0, 1])


# ----- coin variants and spawning -----------------------------------------------------
def test_coin_game__one_coin_variant_alternates_colour_when_asked():
    params = PARAMS.replace(alternate_colour=True)
    s = state_of([(0, 0), (2, 2)], [(0, 0), (0, 1)], present=[False, True])
    colours = []
    for _ in range(3):  # agent 0 walks onto wherever the single coin is
        coin = np.asarray(s.coin_pos)[int(np.argmax(s.coin_present))]
        s = s.replace(
            agent_pos=s.agent_pos.at[0].set(jnp.asarray([coin[0], (coin[1] - 1) % 3]))
        )
        _, s, r, _, _ = STEP(KEY, s, act(RIGHT, STAY), params)
        assert int(s.coin_present.sum()) == 1
        colours.append(int(np.argmax(s.coin_present)))
    assert colours == [0, 1, 0]


def test_coin_game__coin_per_agent_keeps_every_coin_present():
    s = state_of([(0, 0), (2, 2)], [(0, 1), (2, 0)])
    _, s2, _, _, _ = STEP(KEY, s, act(RIGHT, RIGHT), PER_AGENT)
    assert bool(s2.coin_present.all())


class _Fixed:
    """Stands in for the random draws: always returns ``u``, checks the range."""

    def __init__(self, u: int, n_free: int):
        self.u, self.n_free = u, n_free

    def below(self, n):
        assert int(n) == self.n_free
        return jnp.int32(self.u)


@pytest.mark.parametrize(
    "occupied", [[4, 4, 9], [0, 8, 3, 3], [1, 2, 5, 9], [0, 1, 2, 3, 4, 5, 6, 7]]
)
def test_free_cell__the_uth_draw_gives_the_uth_free_cell(occupied):
    free = [c for c in range(9) if c not in occupied]
    occ = [jnp.int32(c) for c in occupied]
    got = [int(_free_cell(occ, _Fixed(u, len(free)), 9)) for u in range(len(free))]
    assert got == free


@pytest.mark.parametrize("n", [1, 2, 5, 9, 1000])
def test_below__splits_the_words_into_n_equal_ranges(n):
    # word = ceil(u * 2**32 / n) is the first word mapped to u, and one less maps to u-1.
    for u in sorted({0, 1 % n, n // 2, n - 1}):
        first = -(-u * 2**32 // n)
        assert int(_below(jnp.uint32(first), n)) == u
        if u > 0:
            assert int(_below(jnp.uint32(first - 1), n)) == u - 1
    assert int(_below(jnp.uint32(2**32 - 1), n)) == n - 1


@settings(max_examples=40, deadline=None)
@given(
    agents=st.lists(st.integers(0, 8), min_size=2, max_size=2),
    coins=st.lists(st.integers(0, 8), min_size=2, max_size=2, unique=True),
    actions=st.lists(st.integers(0, 4), min_size=2, max_size=2),
    seed=st.integers(0, 2**31 - 1),
    per_agent=st.booleans(),
    time=st.integers(0, 49),
)
def test_coin_game__coins_never_spawn_under_agents_or_coins(
    agents, coins, actions, seed, per_agent, time
):
    present = [True, True] if per_agent else [True, False]
    s = state_of([divmod(c, 3) for c in agents], [divmod(c, 3) for c in coins], present)
    s = s.replace(time=jnp.int32(time))
    params = PARAMS.replace(coin_per_agent=per_agent)
    _, s2, _, _, _ = STEP(jax.random.key(seed), s, act(*actions), params)
    on = [
        c
        for c, p in zip(cells_of(s2.coin_pos), np.asarray(s2.coin_present), strict=True)
        if p
    ]
    assert len(on) == (2 if per_agent else 1)
    assert len(set(on)) == len(on)
    assert not set(on) & set(cells_of(s2.agent_pos))


def test_coin_game__tight_grid_fills_the_only_free_cells():
    env, params = pj.make("coin_game", grid_size=2, coin_per_agent=True)
    step = jax.jit(env.step)
    # 2x2 grid: two agents, two coins, no spare cell.  Agent 0 takes coin 0; the only
    # free cell afterwards is agent 0's old cell.
    s = state_of([(0, 0), (1, 1)], [(0, 1), (1, 0)])
    _, s2, _, _, _ = step(KEY, s, act(RIGHT, STAY), params)
    np.testing.assert_array_equal(s2.coin_pos, [(0, 0), (1, 0)])
    for seed in range(8):
        _, s0 = jax.jit(env.reset)(jax.random.key(seed), params)
        cells = {(int(r), int(c)) for r, c in np.asarray(s0.coin_pos)}
        assert len(cells) == 2 and not cells & {
            tuple(p) for p in np.asarray(s0.agent_pos)
        }


# ----- state, statistics, auto-reset (C04, C09) --------------------------------------
def test_coin_game__reset_state_is_complete():
    _, s = RESET(KEY, PARAMS)
    expected = {
        "agent_pos": ((2, 2), jnp.int32),
        "coin_pos": ((2, 2), jnp.int32),
        "coin_present": ((2,), jnp.bool_),
        "time": ((), jnp.int32),
        "episode_return": ((2,), jnp.float32),
        "pickups": ((2,), jnp.int32),
        "own_pickups": ((2,), jnp.int32),
        "coins_lost": ((2,), jnp.int32),
    }
    for name, (shape, dtype) in expected.items():
        x = getattr(s, name)
        assert x.shape == shape and x.dtype == dtype, name
    assert int(s.time) == 0 and int(s.coin_present.sum()) == 1
    for name in ("episode_return", "pickups", "own_pickups", "coins_lost"):
        assert not np.asarray(getattr(s, name)).any(), name
    assert ((np.asarray(s.agent_pos) >= 0) & (np.asarray(s.agent_pos) < 3)).all()
    _, s1, _, _, _ = STEP(KEY, s, act(STAY, STAY), PARAMS)
    assert int(s1.time) == 1


def test_coin_game__pickup_on_the_last_step_counts_in_that_episode():
    params = PER_AGENT.replace(max_steps=3)
    s = state_of([(0, 0), (2, 2)], [(0, 1), (1, 1)], time=2)
    s = s.replace(episode_return=jnp.asarray([5.0, 0.0]), pickups=jnp.asarray([2, 0]))
    obs, s2, r, done, info = STEP(KEY, s, act(RIGHT, STAY), params)
    assert bool(done) and bool(info["truncated"]) and not bool(info["terminated"])
    np.testing.assert_array_equal(r, [1.0, 0.0])  # not zeroed on the last step
    ep = info["episode"]
    np.testing.assert_array_equal(ep["return"], [6.0, 0.0])
    np.testing.assert_array_equal(ep["pickups"], [3, 0])
    np.testing.assert_array_equal(ep["own_pickups"], [1, 0])
    np.testing.assert_array_equal(ep["other_pickups"], [2, 0])
    assert int(ep["length"]) == 3 and float(ep["own_coin_rate"]) == pytest.approx(1 / 3)
    assert int(s2.time) == 0 and not np.asarray(s2.pickups).any()  # new episode
    # The true final observation shows agent 0 on (0, 1); obs is the new episode's.
    assert float(info["final_obs"][0, 0, 1, 0]) == 1.0
    np.testing.assert_array_equal(obs, ENV.get_obs(s2))


def test_coin_game__own_coin_rate_is_nan_without_pickups():
    s = state_of([(0, 0), (2, 2)], [(0, 1), (1, 1)])
    assert np.isnan(float(ENV.episode_stats(s)["own_coin_rate"]))


# ----- observations --------------------------------------------------------------------
def test_coin_game__observation_channels_are_egocentric():
    s = state_of([(0, 0), (1, 2)], [(2, 1), (0, 2)])
    obs = np.asarray(ENV.get_obs(s))
    assert obs.shape == (2, 3, 3, 4)
    for i, (me, other, mine, theirs) in enumerate(
        [((0, 0), (1, 2), (2, 1), (0, 2)), ((1, 2), (0, 0), (0, 2), (2, 1))]
    ):
        for ch, cell in enumerate([me, other, mine, theirs]):
            expected = np.zeros((3, 3))
            expected[cell] = 1.0
            np.testing.assert_array_equal(obs[i, :, :, ch], expected)
    # Swapping the agents (and their colours) swaps the observations.
    swapped = state_of([(1, 2), (0, 0)], [(0, 2), (2, 1)])
    np.testing.assert_array_equal(np.asarray(ENV.get_obs(swapped)), obs[::-1])


def test_coin_game__observation_follows_agents_under_rotation_with_four_players():
    env, _ = pj.make("coin_game", num_agents=4, grid_size=4)
    agents = [(0, 0), (1, 2), (3, 3), (2, 1)]
    coins = [(0, 3), (3, 0), (1, 1), (2, 2)]
    present = [True, False, True, False]
    obs = np.asarray(env.get_obs(state_of(agents, coins, present)))
    rot = [1, 2, 3, 0]  # agent k of the new state is agent rot[k] of the old
    robs = env.get_obs(
        state_of(
            [agents[k] for k in rot], [coins[k] for k in rot], [present[k] for k in rot]
        )
    )
    np.testing.assert_array_equal(np.asarray(robs), obs[rot])
    assert obs.shape == (4, 4, 4, 8) and obs[:, :, :, 4].sum() == 2
    assert obs[:, :, :, 5:8].sum() == 6  # each present coin is foreign to 3 observers


def test_coin_game__centred_observation_puts_the_observer_in_the_middle():
    env, _ = pj.make("coin_game", centred=True, flat=True)
    s = state_of([(0, 0), (0, 1)], [(2, 2), (1, 0)], present=[True, False])
    obs = np.asarray(env.get_obs(s)).reshape(2, 3, 3, 4)
    assert obs[0, 1, 1, 0] == 1 and obs[1, 1, 1, 0] == 1
    assert obs[0, 1, 2, 1] == 1  # agent 1 is one column right of agent 0
    assert obs[1, 1, 0, 1] == 1  # and agent 0 one column left of agent 1
    assert obs[0, 0, 0, 2] == 1  # coin 0 at (2, 2) = up-left of (0, 0) on the torus
    assert obs[1, :, :, 3].sum() == 1 and obs[:, :, :, 3].sum() == 1  # coin 1 absent


@pytest.mark.parametrize(
    "kwargs", [{}, {"flat": True}, {"centred": True, "num_agents": 3, "grid_size": 4}]
)
def test_coin_game__spaces_match_outputs(kwargs):
    env, params = pj.make("coin_game", **kwargs)
    obs, s = jax.jit(env.reset)(KEY, params)
    space = env.observation_space(params)
    assert obs.shape == (env.num_agents, *space.shape) and obs.dtype == space.dtype
    assert bool(space.contains(obs))
    assert env.action_space(params).n == 5
    acts = env.action_space(params).sample(KEY, (env.num_agents,))
    obs, _, r, done, _ = jax.jit(env.step)(KEY, s, acts, params)
    assert obs.shape == (env.num_agents, *space.shape) and obs.dtype == space.dtype
    assert r.shape == (env.num_agents,) and r.dtype == jnp.float32
    assert done.shape == () and done.dtype == jnp.bool_


# ----- API contract: jit once, vmap, determinism (C18, C19) ----------------------------
def _rollout(env, params, key, steps=60):
    def body(carry, k):
        (state,) = carry
        k_act, k_step = split_key(k)
        acts = (random_words(k_act, env.num_agents) % 5).astype(jnp.int32)
        obs, state, r, done, info = env.step(k_step, state, acts, params)
        return (state,), (obs, r, done, info["episode"]["pickups"])

    k0, k1 = jax.random.split(key)
    _, state = env.reset(k0, params)
    return jax.lax.scan(body, (state,), jax.random.split(k1, steps))[1]


ROLLOUT = jax.jit(lambda key, params: _rollout(ENV, params, key))


def test_coin_game__same_seed_bit_identical_different_seeds_differ():
    a = ROLLOUT(jax.random.key(7), PARAMS)
    b = ROLLOUT(jax.random.key(7), PARAMS)
    c = ROLLOUT(jax.random.key(8), PARAMS)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(
        not np.array_equal(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(c), strict=True)
    )


def test_coin_game__sixteen_resets_are_not_all_identical():
    _, s = jax.vmap(RESET, in_axes=(0, None))(jax.random.split(KEY, 16), PARAMS)
    layouts = {
        (
            tuple(np.asarray(s.agent_pos[k]).ravel()),
            tuple(np.asarray(s.coin_pos[k]).ravel()),
        )
        for k in range(16)
    }
    assert len(layouts) > 1


def test_coin_game__jits_once_across_params_and_variants():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, state, actions, params):
        return ENV.step(key, state, actions, params)

    _, s = RESET(KEY, PARAMS)
    for params in (PARAMS, PER_AGENT, PARAMS.replace(max_steps=7, owner_penalty=-3.0)):
        _, s, _, _, _ = step(KEY, s, act(UP, DOWN), params)
    chex.clear_trace_counter()


def test_coin_game__vmaps_over_1024_copies_and_a_params_sweep():
    keys = jax.random.split(KEY, 1024)
    obs, s = jax.vmap(RESET, in_axes=(0, None))(keys, PER_AGENT)
    acts = jnp.zeros((1024, 2), jnp.int32)
    sweep = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (1024,)), PER_AGENT)
    sweep = sweep.replace(owner_penalty=jnp.linspace(-3.0, 0.0, 1024))
    obs, s, r, done, info = jax.vmap(STEP)(keys, s, acts, sweep)
    assert (
        obs.shape == (1024, 2, 3, 3, 4) and r.shape == (1024, 2) and done.shape == (1024,)
    )
    assert bool(s.coin_present.all())


# ----- invalid configuration -----------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"max_steps": 0}, "max_steps"),
        ({"grid_size": 1}, "too few"),
        ({"grid_size": 256}, "grid_size"),
        ({"num_agents": 0}, "num_agents"),
        ({"grid_size": 2, "num_agents": 3, "coin_per_agent": True}, "coin_per_agent"),
        ({"owner_penalty": float("nan")}, "owner_penalty"),
    ],
)
def test_coin_game__invalid_config_is_rejected_with_the_reason(kwargs, reason):
    with pytest.raises(ValueError, match=reason):
        pj.make("coin_game", **kwargs)


def test_coin_game__smallest_valid_grids_are_accepted():
    pj.make("coin_game", grid_size=2, num_agents=3)  # 4 cells: 3 agents + 1 coin
    pj.make("coin_game", grid_size=2, coin_per_agent=True)  # 2 agents + 2 coins
    assert CoinGame(grid_size=2, num_agents=3).obs_shape == (2, 2, 6)


# ----- the fast threefry used by step (pain_jax.envs.api) -------------------------------
@pytest.mark.parametrize("key", [jax.random.key(3), jax.random.PRNGKey(5)])
def test_split_key__matches_jax_random_split_bit_for_bit(key):
    ours, theirs = split_key(key, 5), jax.random.split(key, 5)
    if jax.dtypes.issubdtype(theirs.dtype, jax.dtypes.prng_key):
        ours, theirs = jax.random.key_data(ours), jax.random.key_data(theirs)
    np.testing.assert_array_equal(ours, theirs)


def test_random_words__match_counter_mode_threefry():
    data = jnp.asarray([7, 9], jnp.uint32)
    expected = threefry_2x32((data[0], data[1]), jnp.arange(6, dtype=jnp.uint32))
    np.testing.assert_array_equal(random_words(data, 6), expected)
    np.testing.assert_array_equal(random_words(data, 5), expected[:5])
    np.testing.assert_array_equal(
        random_words(jax.random.wrap_key_data(data), 6), expected
    )
