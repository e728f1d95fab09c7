"""Pain Grid: hand-placed scenarios for every rule (objects placed explicitly, never a
seed's draws), symmetry and invariants as hypothesis properties, the API contract."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pain_jax as pj
from pain_jax.envs.pain_grid import (
    ATTACK,
    CHANNELS,
    CLEAR,
    DOWN,
    LEFT,
    PUSH,
    RIGHT,
    STAY,
    UP,
    PainGrid,
    make_state,
)
from pain_jax.envs.pain_grid_render import render_frames

KEY = jax.random.key(0)
UP_H, RIGHT_H, DOWN_H, LEFT_H = range(4)  # headings
WALL, RES, HAZ, SELF, OTHER, FACING = range(len(CHANNELS))


@functools.cache
def compiled(**config):
    """(env, no-respawn params, jitted step) for a static config (cached per config)."""
    env, params = pj.make("pain_grid", **config)
    params = params.replace(regrow_prob=0.0, hazard_respawn_prob=0.0)
    return env, params, jax.jit(env.step)


def cfg(**config):
    return compiled(**dict(sorted(config.items())))


def act(*a):
    return jnp.asarray(a, jnp.int32)


def run(state, actions, config=None, **param_changes):
    env, params, step = cfg(**(config or {}))
    obs, new, rewards, done, info = step(
        KEY, state, act(*actions), params.replace(**param_changes)
    )
    return obs, new, np.asarray(rewards), info


def pos(state):
    return [tuple(p) for p in np.asarray(state.agent_pos).tolist()]


ENV2 = cfg()[0]  # 2 agents, 8x8, radius 2, 3 resources, 2 hazards


# ----- pushing, clearing, help and harm ------------------------------------------------
def test_push__moves_hazard_off_another_agent_and_records_help():
    # Agent 0 faces right at the hazard (3,3), which hurts agent 1 at (2,3) and agent 0.
    s = make_state(ENV2, [(3, 2), (2, 3)], [RIGHT_H, UP_H], hazards=[(3, 3)])
    _, s2, r, _ = run(s, [PUSH, STAY])
    assert tuple(np.asarray(s2.hazard_pos[0])) == (3, 4) and bool(s2.hazard_present[0])
    np.testing.assert_array_equal(s2.help, [[1, 1], [0, 0]])
    np.testing.assert_array_equal(s2.harm, np.zeros((2, 2)))
    np.testing.assert_array_equal(r, [0.0, 0.0])  # nobody in range any more
    np.testing.assert_array_equal(s2.hazard_hurt, [0.0, 0.0])


def test_push__moves_hazard_next_to_an_agent_and_records_harm():
    # Hazard (3,3) -> (3,4), next to agent 1 at (3,5), which it did not reach before.
    s = make_state(ENV2, [(3, 2), (3, 5)], [RIGHT_H, UP_H], hazards=[(3, 3)])
    _, s2, r, _ = run(s, [PUSH, STAY])
    np.testing.assert_array_equal(s2.harm, [[0.0, 0.5], [0.0, 0.0]])
    np.testing.assert_array_equal(s2.help, [[1, 0], [0, 0]])  # moved off agent 0
    np.testing.assert_array_equal(r, [0.0, -0.5])
    np.testing.assert_array_equal(s2.hazard_hurt, [0.0, 0.5])


def test_push__hazard_already_hurting_the_agent_is_not_new_harm():
    # Pushed onto agent 1 at (3,4): it was next to it before, damage unchanged.
    s = make_state(ENV2, [(3, 2), (3, 4)], [RIGHT_H, UP_H], hazards=[(3, 3)])
    _, s2, r, _ = run(s, [PUSH, STAY])
    assert tuple(np.asarray(s2.hazard_pos[0])) == (3, 4)
    np.testing.assert_array_equal(s2.harm, np.zeros((2, 2)))
    np.testing.assert_array_equal(r, [0.0, -0.5])


@pytest.mark.parametrize(
    "agents, headings, hazards, resources",
    [
        ([(3, 6), (0, 0)], [RIGHT_H, UP_H], [(3, 7)], []),  # destination off the grid
        ([(3, 2), (0, 0)], [RIGHT_H, UP_H], [(3, 3), (3, 4)], []),  # another hazard
        ([(3, 2), (0, 0)], [RIGHT_H, UP_H], [(3, 3)], [(3, 4)]),  # a resource
        ([(3, 2), (3, 4)], [RIGHT_H, LEFT_H], [(3, 3)], []),  # two pushers
    ],
)
def test_push__blocked_destinations_and_double_pushes_leave_the_hazard(
    agents, headings, hazards, resources
):
    s = make_state(ENV2, agents, headings, resources=resources, hazards=hazards)
    _, s2, _, _ = run(s, [PUSH, PUSH])
    np.testing.assert_array_equal(s2.hazard_pos, s.hazard_pos)
    np.testing.assert_array_equal(s2.help, np.zeros((2, 2)))


def test_push__two_hazards_onto_one_cell_neither_moves():
    s = make_state(ENV2, [(3, 1), (3, 5)], [RIGHT_H, LEFT_H], hazards=[(3, 2), (3, 4)])
    _, s2, _, _ = run(s, [PUSH, PUSH])
    np.testing.assert_array_equal(s2.hazard_pos, s.hazard_pos)


def test_clear__removes_the_hazard_ahead_pays_cost_and_records_help():
    # Hazard (4,3) is next to agent 1 at (5,3); agent 0 at (3,3) faces down at it.
    s = make_state(ENV2, [(3, 3), (5, 3)], [DOWN_H, UP_H], hazards=[(4, 3), (0, 7)])
    _, s2, r, _ = run(s, [CLEAR, CLEAR])  # agent 1 faces up: the same hazard
    np.testing.assert_array_equal(s2.hazard_present, [False, True])
    np.testing.assert_array_equal(s2.help, [[1, 1], [1, 1]])  # both removed it
    np.testing.assert_allclose(r, [-0.1, -0.1])  # cost only, no hazard damage
    _, s3, r3, _ = run(s, [CLEAR, STAY], clear_cost=-0.25)  # nothing else in range
    np.testing.assert_allclose(r3, [-0.25, 0.0])
    s4 = make_state(ENV2, [(3, 3), (6, 6)], [LEFT_H, UP_H], hazards=[(4, 3)])
    _, s5, r5, _ = run(s4, [CLEAR, STAY])  # nothing ahead: cost, no effect
    assert bool(s5.hazard_present[0]) and np.allclose(r5, [-0.1 - 0.5, 0.0])


def test_clear__absent_hazard_respawns_on_a_free_cell_when_asked():
    # 5x5 grid walled but for 4 cells: 2 agents, 1 hazard cleared, 1 resource.
    free = {(0, 0), (0, 1), (0, 2), (1, 0)}
    walls = [(r, c) for r in range(5) for c in range(5) if (r, c) not in free]
    config = dict(size=5, walls=tuple(walls), num_resources=1, num_hazards=1)
    env = cfg(**config)[0]
    s = make_state(env, [(0, 0), (1, 0)], [RIGHT_H, UP_H], [(0, 2)], [(0, 1)])
    _, s2, _, _ = run(s, [CLEAR, STAY], config, hazard_respawn_prob=1.0)
    assert bool(s2.hazard_present[0])
    assert tuple(np.asarray(s2.hazard_pos[0])) == (0, 1)  # the only free cell
    _, s3, _, _ = run(s, [CLEAR, STAY], config, hazard_respawn_prob=0.0)
    assert not bool(s3.hazard_present[0])


# ----- attacks and shared reward ------------------------------------------------------
@pytest.mark.parametrize(
    "actions, rewards, harm",
    [
        ((ATTACK, STAY), [-0.1, -1.0], [[0, 1], [0, 0]]),
        ((STAY, ATTACK), [-1.0, -0.1], [[0, 0], [1, 0]]),
        ((ATTACK, ATTACK), [-1.1, -1.1], [[0, 1], [1, 0]]),
    ],
)
def test_attack__victim_damage_and_attacker_cost(actions, rewards, harm):
    s = make_state(ENV2, [(3, 3), (3, 4)])
    _, s2, r, _ = run(s, actions)
    np.testing.assert_allclose(r, rewards, rtol=1e-6)
    np.testing.assert_array_equal(s2.harm, harm)
    np.testing.assert_array_equal(s2.attacks, np.array(actions) == ATTACK)


@pytest.mark.parametrize("other", [(4, 4), (3, 5), (0, 0)])
def test_attack__diagonal_or_distant_agents_are_not_hit(other):
    _, s2, r, _ = run(make_state(ENV2, [(3, 3), other]), [ATTACK, STAY])
    np.testing.assert_allclose(r, [-0.1, 0.0])
    assert not s2.harm.any()


def test_attack__hits_after_the_moves():
    # Agent 1 steps next to the attacker in the same step: it is hit.
    _, s2, r, _ = run(make_state(ENV2, [(3, 3), (3, 5)]), [ATTACK, LEFT])
    assert pos(s2)[1] == (3, 4)
    np.testing.assert_allclose(r, [-0.1, -1.0])


def test_shared_reward__mixes_own_and_mean():
    s = make_state(ENV2, [(3, 3), (3, 4)])
    _, _, r, _ = run(s, [ATTACK, STAY], shared_reward=0.5)
    own, mean = np.array([-0.1, -1.0]), -0.55
    np.testing.assert_allclose(r, 0.5 * own + 0.5 * mean, rtol=1e-6)
    _, _, r1, _ = run(s, [ATTACK, STAY], shared_reward=1.0)
    np.testing.assert_allclose(r1, [mean, mean], rtol=1e-6)


# ----- resources and hazard damage ----------------------------------------------------
def test_resource__collected_on_entry_and_not_regrown_with_prob_zero():
    s = make_state(ENV2, [(3, 3), (6, 6)], resources=[(3, 4), (0, 0)])
    _, s2, r, info = run(s, [RIGHT, STAY])
    np.testing.assert_allclose(r, [1.0, 0.0])
    np.testing.assert_array_equal(s2.resource_present, [False, True, False])
    np.testing.assert_array_equal(s2.resources_collected, [1, 0])
    np.testing.assert_array_equal(info["episode"]["resources"], [1, 0])


def test_resource__regrows_on_the_only_free_cell():
    free = {(0, 0), (0, 1), (0, 2), (1, 0)}
    walls = [(r, c) for r in range(5) for c in range(5) if (r, c) not in free]
    config = dict(size=5, walls=tuple(walls), num_resources=1, num_hazards=1)
    env = cfg(**config)[0]
    s = make_state(env, [(0, 0), (1, 0)], [UP_H, UP_H], [(0, 1)], [(0, 2)])
    _, s2, r, _ = run(s, [RIGHT, STAY], config, regrow_prob=1.0)
    # agent 0 took the resource at (0,1); the hazard is on (0,2): (0,0) is left.
    assert pos(s2)[0] == (0, 1) and r[0] == 1.0 - 0.5  # hazard next door
    assert bool(s2.resource_present[0])
    assert tuple(np.asarray(s2.resource_pos[0])) == (0, 0)


@pytest.mark.parametrize(
    "hazards, damage",
    [([(3, 3)], 0.5), ([(2, 3)], 0.5), ([(3, 4), (4, 3)], 1.0), ([(2, 2)], 0.0)],
)
def test_hazard__damage_on_or_next_to_per_hazard(hazards, damage):
    s = make_state(ENV2, [(3, 3), (7, 7)], hazards=hazards)
    _, s2, r, _ = run(s, [STAY, STAY])
    np.testing.assert_allclose(r, [-damage, 0.0])
    np.testing.assert_allclose(s2.hazard_hurt, [damage, 0.0])
    np.testing.assert_allclose(s2.hazard_damage_total, [damage, 0.0])


# ----- moves: walls, conflicts, chains, swaps, cycles ---------------------------------
def test_moves__walls_block_and_set_heading():
    env = cfg(walls=((3, 4),))[0]
    s = make_state(env, [(0, 0), (3, 3)], [DOWN_H, UP_H])
    _, s2, _, _ = run(s, [UP, RIGHT], {"walls": ((3, 4),)})
    assert pos(s2) == [(0, 0), (3, 3)]
    np.testing.assert_array_equal(s2.heading, [UP_H, RIGHT_H])
    _, s3, _, _ = run(s, [LEFT, DOWN])
    assert pos(s3) == [(0, 0), (4, 3)]


@pytest.mark.parametrize(
    "agents, actions, expected",
    [
        ([(3, 2), (3, 4)], (RIGHT, LEFT), [(3, 2), (3, 4)]),  # same target: none moves
        ([(3, 2), (3, 3)], (RIGHT, RIGHT), [(3, 3), (3, 4)]),  # chain moves
        ([(3, 2), (3, 3)], (RIGHT, STAY), [(3, 2), (3, 3)]),  # into a stayer: blocked
        ([(3, 2), (3, 3)], (RIGHT, LEFT), [(3, 2), (3, 3)]),  # swap: blocked
        ([(3, 6), (3, 7)], (RIGHT, RIGHT), [(3, 6), (3, 7)]),  # chain into the wall
    ],
)
def test_moves__conflicts_chains_and_swaps(agents, actions, expected):
    _, s2, _, _ = run(make_state(ENV2, agents), actions)
    assert pos(s2) == expected


def test_moves__four_agents_rotate_around_a_square():
    config = {"num_agents": 4}
    env = cfg(**config)[0]
    s = make_state(env, [(2, 2), (2, 3), (3, 3), (3, 2)])
    _, s2, _, _ = run(s, [RIGHT, DOWN, LEFT, UP], config)
    assert pos(s2) == [(2, 3), (3, 3), (3, 2), (2, 2)]
    _, s3, _, _ = run(s, [RIGHT, DOWN, LEFT, STAY], config)  # one stays: all blocked
    assert pos(s3) == pos(s)


# ----- symmetry and invariants (property tests) ---------------------------------------
SYM = dict(num_agents=4, size=5, num_resources=2, num_hazards=2)


@functools.cache
def sym_step():
    env, params = pj.make("pain_grid", **SYM)
    params = params.replace(regrow_prob=0.5, hazard_respawn_prob=0.5)
    return env, params, jax.jit(env.step)


@settings(max_examples=25, deadline=None)
@given(
    cells=st.permutations(range(25)),
    headings=st.lists(st.integers(0, 3), min_size=4, max_size=4),
    actions=st.lists(st.integers(0, 7), min_size=4, max_size=4),
    perm=st.permutations(range(4)),
    present=st.lists(st.booleans(), min_size=4, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_step__permuting_agents_permutes_the_outcome(
    cells, headings, actions, perm, present, seed
):
    env, params, step = sym_step()
    rc = [divmod(c, 5) for c in cells[:8]]  # 4 agents, 2 resources, 2 hazards
    s = make_state(env, rc[:4], headings, resources=rc[4:6], hazards=rc[6:8])
    s = s.replace(
        resource_present=jnp.asarray(present[:2]), hazard_present=jnp.asarray(present[2:])
    )
    p = np.asarray(perm)
    sp = s.replace(agent_pos=s.agent_pos[p], heading=s.heading[p])
    key = jax.random.key(seed)
    obs, s2, r, _, _ = step(key, s, act(*actions), params)
    obs_p, s2p, rp, _, _ = step(key, sp, act(*np.asarray(actions)[p]), params)
    np.testing.assert_array_equal(obs_p, obs[p])
    np.testing.assert_array_equal(rp, r[p])
    for f in ("agent_pos", "heading", "hazard_hurt"):
        np.testing.assert_array_equal(getattr(s2p, f), getattr(s2, f)[p])
    for f in ("harm", "help"):
        np.testing.assert_array_equal(getattr(s2p, f), getattr(s2, f)[p][:, p])
    for f in ("resource_pos", "resource_present", "hazard_pos", "hazard_present"):
        np.testing.assert_array_equal(getattr(s2p, f), getattr(s2, f))
    # invariants: agents distinct and on the grid; resources and hazards distinct and
    # off agents' cells (resources) ; every agent moved by at most one cell.
    agents = pos(s2)
    assert len(set(agents)) == 4 and all(0 <= x < 5 for a in agents for x in a)
    step_len = np.abs(np.asarray(s2.agent_pos) - np.asarray(s.agent_pos)).sum(1)
    assert np.all(step_len <= 1)
    res = [
        tuple(x)
        for x, on in zip(s2.resource_pos.tolist(), s2.resource_present, strict=True)
        if on
    ]
    haz = [
        tuple(x)
        for x, on in zip(s2.hazard_pos.tolist(), s2.hazard_present, strict=True)
        if on
    ]
    assert len(set(res + haz)) == len(res + haz) and not set(res) & set(agents)


# ----- observations -------------------------------------------------------------------
def test_obs__border_is_wall_and_objects_are_in_their_channels():
    s = make_state(ENV2, [(0, 0), (1, 1)], [UP_H, LEFT_H], [(0, 2)], [(2, 0)])
    obs = np.asarray(jax.jit(ENV2.get_obs)(s))
    assert obs.shape == (2, 5, 5, len(CHANNELS)) and obs.dtype == np.float32
    wall = np.zeros((5, 5))
    wall[:2, :] = wall[:, :2] = 1  # rows/cols -2, -1 around (0, 0) are outside
    np.testing.assert_array_equal(obs[0, ..., WALL], wall)
    one = functools.partial(_one_hot, 5)
    np.testing.assert_array_equal(obs[0, ..., RES], one((2, 4)))
    np.testing.assert_array_equal(obs[0, ..., HAZ], one((4, 2)))
    np.testing.assert_array_equal(obs[0, ..., SELF], one((2, 2)))
    np.testing.assert_array_equal(obs[0, ..., OTHER], one((3, 3)))
    # facing: agent 0 faces up (outside, (1,2)), agent 1 faces left to (1,0) = (3,2)
    np.testing.assert_array_equal(obs[0, ..., FACING], one((1, 2)) + one((3, 2)))
    np.testing.assert_array_equal(obs[1, ..., OTHER], one((1, 1)))


def _one_hot(v, cell):
    out = np.zeros((v, v), np.float32)
    out[cell] = 1.0
    return out


@pytest.mark.parametrize(
    "heading, resource",
    [(UP_H, (1, 3)), (RIGHT_H, (3, 5)), (DOWN_H, (5, 3)), (LEFT_H, (3, 1))],
)
def test_obs__rotated_view_puts_the_heading_up(heading, resource):
    config = {"rotate_view": True}
    env = cfg(**config)[0]
    s = make_state(env, [(3, 3), (7, 7)], [heading, UP_H], [resource])
    obs = np.asarray(jax.jit(env.get_obs)(s))
    np.testing.assert_array_equal(obs[0, ..., RES], _one_hot(5, (0, 2)))  # 2 ahead
    np.testing.assert_array_equal(obs[0, ..., FACING], _one_hot(5, (1, 2)))


def test_obs__rotated_view_at_the_border_shows_outside_as_wall():
    env = cfg(rotate_view=True)[0]
    s = make_state(env, [(0, 0), (7, 7)], [RIGHT_H, UP_H])
    wall = np.asarray(jax.jit(env.get_obs)(s))[0, ..., WALL]
    # Facing right from (0,0): ahead (view up) is along row 0, the agent's left
    # (view left) is the row above the grid: wall; its right is row 1: free.
    want = np.zeros((5, 5))
    want[:, :2] = 1  # view cols 0,1 = world rows -2,-1
    want[3:, :] = 1  # view rows 3,4 = world cols -1,-2 (behind)
    np.testing.assert_array_equal(wall, want)


def test_visible_pain__other_agents_levels_at_their_cells():
    config = {"num_agents": 3, "rotate_view": True}
    env = cfg(**config)[0]
    s = make_state(env, [(3, 3), (3, 4), (7, 7)], [RIGHT_H, UP_H, UP_H])
    seen = np.asarray(jax.jit(env.visible_pain)(s, jnp.array([0.5, 2.0, 3.0])))
    assert seen.shape == (3, 5, 5, 1) and seen.dtype == np.float32
    np.testing.assert_array_equal(seen[0, ..., 0], 2.0 * _one_hot(5, (1, 2)))  # ahead
    np.testing.assert_array_equal(seen[1, ..., 0], 0.5 * _one_hot(5, (2, 1)))  # left
    np.testing.assert_array_equal(seen[2, ..., 0], np.zeros((5, 5)))  # nobody near


# ----- reset, API, jit-once, determinism ----------------------------------------------
@pytest.mark.parametrize(
    "config", [dict(), dict(num_agents=5, height=6, width=9, view_radius=1)]
)
def test_reset__objects_on_distinct_free_cells(config):
    config = dict(config, walls=((2, 2), (2, 3), (3, 2)))
    env, params = pj.make("pain_grid", **config)
    keys = jax.random.split(jax.random.key(3), 256)
    _, s = jax.jit(jax.vmap(env.reset, (0, None)))(keys, params)
    cells = np.concatenate([s.agent_pos, s.resource_pos, s.hazard_pos], 1)
    flat = cells[..., 0] * env.width + cells[..., 1]
    n = cells.shape[1]
    assert all(len(set(row)) == n for row in flat.tolist())
    walls = {r * env.width + c for r, c in env.walls}
    assert not walls & set(flat.ravel().tolist())
    assert (cells[..., 0] < env.height).all() and (cells[..., 1] < env.width).all()
    assert len({row.tobytes() for row in flat}) > 200  # layouts vary with the key
    assert set(np.unique(s.heading).tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    "config",
    [
        dict(),
        dict(num_agents=3, size=5, view_radius=1),
        dict(num_agents=6, height=7, width=12, rotate_view=True),
    ],
)
def test_api__shapes_spaces_and_jit_once(config):
    env, params = pj.make("pain_grid", **config)
    a, v = env.num_agents, 2 * env.view_radius + 1
    assert env.obs_shape == (v, v, 6) and env.action_space().n == 8

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, state, actions, params):
        return env.step(key, state, actions, params)

    obs, s = jax.jit(env.reset)(KEY, params)
    assert obs.shape == (a, v, v, 6)
    for t, p in enumerate([params, params.replace(shared_reward=0.5, max_steps=7)]):
        actions = jnp.arange(a, dtype=jnp.int32) % 8
        obs, s, r, done, info = step(jax.random.key(t), s, actions, p)
    assert bool(env.observation_space().contains(obs)) and r.shape == (a,)
    assert int(s.time) == 2 and info["episode"]["harm_matrix"].shape == (a, a)
    chex.clear_trace_counter()


def test_determinism__same_key_bit_identical_other_key_differs():
    env, params = pj.make("pain_grid")

    @jax.jit
    def roll(key):
        _, s = env.reset(key, params)

        def body(s, k):
            k_a, k_s = jax.random.split(k)
            acts = jax.random.randint(k_a, (env.num_agents,), 0, 8)
            obs, s, r, d, _ = env.step(k_s, s, acts, params)
            return s, (obs, r)

        return jax.lax.scan(body, s, jax.random.split(key, 50))

    a, b, c = roll(jax.random.key(1)), roll(jax.random.key(1)), roll(jax.random.key(2))
    chex.assert_trees_all_equal(a, b)
    assert not np.array_equal(a[1][0], c[1][0])


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        (dict(num_agents=1), "num_agents"),
        (dict(num_agents=13), "num_agents"),
        (dict(size=4), "height"),
        (dict(width=33), "width"),
        (dict(view_radius=0), "view_radius"),
        (dict(walls=((5, 5),), size=5), "outside"),
        (dict(size=5, num_agents=12, num_resources=10, num_hazards=4), "too few"),
    ],
)
def test_config__invalid_is_rejected_with_the_reason(kwargs, reason):
    with pytest.raises(ValueError, match=reason):
        PainGrid(**kwargs)


@pytest.mark.parametrize(
    "field, value",
    [("regrow_prob", 1.5), ("shared_reward", -0.1), ("hazard_damage", np.inf)],
)
def test_params__invalid_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        pj.make("pain_grid", **{field: value})


def test_episode_stats__accumulate_harm_help_and_attacks():
    # Agent 1 faces the hazard (2,4) above it; agent 0 is diagonal to the hazard.
    s = make_state(ENV2, [(3, 3), (3, 4)], [UP_H, UP_H], hazards=[(2, 4)])
    _, s, _, _ = run(s, [ATTACK, ATTACK])
    _, s, _, _ = run(s, [ATTACK, STAY])
    _, s, _, info = run(s, [STAY, CLEAR])
    ep = info["episode"]
    np.testing.assert_allclose(ep["harm_matrix"], [[0, 2], [1, 0]])
    np.testing.assert_allclose(ep["harm_done"], [2, 1])
    np.testing.assert_allclose(ep["help_matrix"], [[0, 0], [0, 1]])  # self-help only
    np.testing.assert_allclose(ep["help_given"], [0, 0])
    np.testing.assert_array_equal(ep["attacks"], [2, 1])
    assert int(ep["length"]) == 3
    # agent 1 sat next to the hazard for the first two steps: 2 x 0.5
    np.testing.assert_allclose(ep["hazard_damage"], [0.0, 1.0])


# ----- rendering ----------------------------------------------------------------------
def test_render__frame_shape_and_colours():
    s = make_state(ENV2, [(0, 0), (7, 7)], resources=[(0, 7)], hazards=[(7, 0)])
    frame = ENV2.render(s, cell=4)
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    centre = [
        frame[r * 4 + 2, c * 4 + 2] for r, c in [(0, 0), (7, 7), (0, 7), (7, 0), (3, 3)]
    ]
    assert len({tuple(x) for x in centre}) == 5  # two agents, resource, hazard, floor
    frames = render_frames(ENV2, [s, s], cell=4)
    assert frames.shape == (2, 32, 32, 3) and (frames[0] == frame).all()


# ----- bit-for-bit pin of seeded rollouts (guards speed work on the step) -------------
#: sha256 of every output of ``_pinned_rollout`` per config, computed with the
#: reference (pre-optimisation) implementation of 2026-12-03.  A change here means
#: the dynamics, observations, records or random draws changed, not just the speed.
PINNED = {
    "2a_8x8": "23f908ef50acb26582fd5f7cb919fda5f4beef8bb02d022fca81faf8c249b703",
    "4a_7x9_walls_rot": (
        "3141e9f4256b8ff0ef49936e0cf961a82eb485f1f86297b3a67fbff0f733fb9d"
    ),
    "8a_6x6_crowded": "97014bd356d9dcfb23e9823ce3f459406db5c6443f6dadf6e6de166e8f5f1cd2",
}
PIN_CONFIGS = {
    "2a_8x8": (dict(), dict()),
    "4a_7x9_walls_rot": (
        dict(
            num_agents=4,
            height=7,
            width=9,
            num_hazards=4,
            rotate_view=True,
            walls=((2, 2), (3, 3), (4, 6)),
        ),
        dict(hazard_respawn_prob=0.3, shared_reward=0.25),
    ),
    "8a_6x6_crowded": (
        dict(num_agents=8, size=6, view_radius=3, num_resources=6, num_hazards=5),
        dict(regrow_prob=0.5, hazard_respawn_prob=0.5, max_steps=9),
    ),
}


def _pinned_rollout(name, batch=8, steps=24):
    """Every output of ``steps`` steps of ``batch`` seeded copies (auto-resets
    included), hashed: observations, rewards, done, info and the full state, plus
    ``visible_pain`` of every state."""
    import hashlib

    config, changes = PIN_CONFIGS[name]
    env, params = pj.make("pain_grid", **config)
    params = params.replace(**changes)
    reset = jax.vmap(env.reset, (0, None))
    step = jax.vmap(env.step, (0, 0, 0, None))
    pain = jax.vmap(env.visible_pain)

    @jax.jit
    def roll(key):
        obs, s = reset(jax.random.split(key, batch), params)

        def body(s, k):
            k_a, k_s = jax.random.split(k)
            acts = jax.random.randint(k_a, (batch, env.num_agents), 0, 8)
            out = step(jax.random.split(k_s, batch), s, acts, params)
            level = out[2] + 1.0
            return out[1], (out, pain(out[1], level))

        return obs, s, jax.lax.scan(body, s, jax.random.split(key, steps))

    leaves = jax.tree.leaves(roll(jax.random.key(11)))
    digest = hashlib.sha256()
    for x in leaves:
        x = np.asarray(x)
        digest.update(str((x.shape, x.dtype)).encode() + x.tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize(
    "name",
    [
        "2a_8x8",
        "4a_7x9_walls_rot",
        # 8 agents compile slowly (about a minute on 2 busy cores)
        pytest.param("8a_6x6_crowded", marks=pytest.mark.slow),
    ],
)
def test_rollout__bit_identical_to_the_pinned_reference(name):
    assert _pinned_rollout(name) == PINNED[name]
