"""Sampled iterated matrix games (``pain_jax.envs.matrix``) and fixed strategies
(``pain_jax.envs.strategies``).

Field cases C02, C03 and C07 of ``shared/cases/README.md`` are here.  Jitted
functions are built once per environment (``functools.cache``) and shared by tests.
"""

from __future__ import annotations

import functools
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pain_jax as pj
from pain_jax.envs import strategies as strat
from pain_jax.envs.payoffs import CC, CD, DC, DD, START

GAMES = ["ipd", "imp", "chicken", "stag_hunt"]
SYMMETRIC = ["ipd", "chicken", "stag_hunt"]
JOINT = [(0, 0), (0, 1), (1, 0), (1, 1)]

# Hand-copied from shared/docs/references.md (and payoffs.py's documented stag hunt),
# so a wrong table in payoffs.py fails here: game -> {(a1, a2): (r1, r2)}.
EXPECTED = {
    "ipd": {(0, 0): (-1, -1), (0, 1): (-3, 0), (1, 0): (0, -3), (1, 1): (-2, -2)},
    "imp": {(0, 0): (1, -1), (0, 1): (-1, 1), (1, 0): (-1, 1), (1, 1): (1, -1)},
    "chicken": {(0, 0): (0, 0), (0, 1): (-1, 1), (1, 0): (1, -1), (1, 1): (-100, -100)},
    "stag_hunt": {(0, 0): (4, 4), (0, 1): (0, 3), (1, 0): (3, 0), (1, 1): (2, 2)},
}


# --------------------------------------------------------------------------------------
# shared jitted functions
# --------------------------------------------------------------------------------------
@functools.cache
def env_of(name: str, **static):
    env, params = pj.make(name, **static)
    return env, params


@functools.cache
def step_fn(name: str, **static):
    env, _ = env_of(name, **static)
    return jax.jit(env.step)


@functools.cache
def reset_fn(name: str, **static):
    env, _ = env_of(name, **static)
    return jax.jit(env.reset)


@functools.cache
def scan_fn(name: str, **static):
    """Jitted ``(params, actions (T, A)) -> per-step outputs`` of a scripted episode."""
    env, _ = env_of(name, **static)

    @jax.jit
    def run(params, actions):
        _, state = env.reset(jax.random.key(0), params)

        def body(state, a):
            obs, state, rewards, done, info = env.step(
                jax.random.key(1), state, a, params
            )
            out = {"obs": obs, "rewards": rewards, "done": done, "time": state.time}
            return state, (out, info)

        return jax.lax.scan(body, state, actions)[1]

    return run


def first_step(name: str, actions, params=None, **static):
    env, default = env_of(name, **static)
    params = default if params is None else params
    obs0, state0 = reset_fn(name, **static)(jax.random.key(0), params)
    out = step_fn(name, **static)(
        jax.random.key(1), state0, jnp.asarray(actions, jnp.int32), params
    )
    return obs0, state0, out


def onehot(i: int) -> np.ndarray:
    return np.eye(5, dtype=np.float32)[i]


# --------------------------------------------------------------------------------------
# C03: two-player mechanics
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GAMES)
def test_matrix_game__exactly_two_actions_and_start_after_reset(name):
    env, params = env_of(name)
    assert env.num_agents == 2 and env.num_actions == 2
    assert env.action_space(params).n == 2
    assert env.observation_space(params).shape == (5,)
    obs0, state0, _ = first_step(name, [0, 0])
    np.testing.assert_array_equal(obs0, [onehot(START), onehot(START)])
    assert obs0.dtype == jnp.float32
    np.testing.assert_array_equal(state0.memory, [START, START])


@pytest.mark.parametrize("name", GAMES)
def test_matrix_game__joint_cd_seen_as_cd_by_player1_and_dc_by_player2(name):
    _, _, (obs, state, _, done, info) = first_step(name, [0, 1])
    np.testing.assert_array_equal(obs, [onehot(CD), onehot(DC)])
    np.testing.assert_array_equal(info["final_obs"], obs)
    assert not bool(done)
    # and the mirror image, plus the symmetric outcomes
    for actions, want in (([1, 0], [DC, CD]), ([0, 0], [CC, CC]), ([1, 1], [DD, DD])):
        obs = first_step(name, actions)[2][0]
        np.testing.assert_array_equal(obs, [onehot(w) for w in want])


@pytest.mark.parametrize("name", GAMES)
def test_matrix_game__every_joint_action_pays_the_configured_payoffs(name):
    for a1, a2 in JOINT:
        rewards = first_step(name, [a1, a2])[2][2]
        np.testing.assert_array_equal(rewards, EXPECTED[name][(a1, a2)])
    # A non-default table given to make is the one used (no retrace: same structure).
    custom = np.arange(8, dtype=np.float32).reshape(2, 2, 2) - 3.5
    _, params = pj.make(name, payoffs=jnp.asarray(custom))
    for a1, a2 in JOINT:
        rewards = first_step(name, [a1, a2], params=params)[2][2]
        np.testing.assert_array_equal(rewards, custom[a1, a2])


@pytest.mark.parametrize("name", ["ipd", "n_pd"])
def test_matrix_game__200_step_episode_ends_exactly_at_step_200(name):
    env, params = env_of(name)
    params = params.replace(max_steps=200)
    actions = jnp.zeros((200, env.num_agents), jnp.int32)
    out, info = jax.device_get(scan_fn(name)(params, actions))
    np.testing.assert_array_equal(np.flatnonzero(out["done"]), [199])
    assert info["episode"]["length"][199] == 200
    assert info["truncated"][199] and not info["terminated"].any()
    # no 8-bit (or 16-bit) counters anywhere in the state
    _, state = env.reset(jax.random.key(0), params)
    for leaf in jax.tree.leaves(state):
        if jnp.issubdtype(leaf.dtype, jnp.integer):
            assert leaf.dtype == jnp.int32


# --------------------------------------------------------------------------------------
# C02, C07: counters and done timing
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ipd", "n_pd"])
def test_matrix_game__counter_reads_1_to_4_then_0_with_length_5(name):
    env, params = env_of(name)
    actions = jnp.tile(jnp.array([0, 1] + [0] * (env.num_agents - 2)), (10, 1))
    out, _ = jax.device_get(scan_fn(name)(params.replace(max_steps=5), actions))
    np.testing.assert_array_equal(out["time"], [1, 2, 3, 4, 0, 1, 2, 3, 4, 0])
    np.testing.assert_array_equal(np.flatnonzero(out["done"]) + 1, [5, 10])
    # the observation changes after the first step and is START again after a reset
    assert out["obs"][0, 0, 0] == 0 and out["obs"][4, 0, 0] == 1


def test_matrix_game__time_limit_200_done_at_199_399_599_799_999():
    env, params = env_of("ipd")
    actions = jax.random.bernoulli(jax.random.key(7), 0.5, (1000, 2)).astype(jnp.int32)
    out, info = jax.device_get(scan_fn("ipd")(params.replace(max_steps=200), actions))
    done = out["done"]
    np.testing.assert_array_equal(np.flatnonzero(done), [199, 399, 599, 799, 999])
    assert not np.any(done[1:] & done[:-1])
    np.testing.assert_array_equal(info["episode"]["length"][done], [200] * 5)
    np.testing.assert_array_equal(info["episode"]["outcomes"][done].sum(-1), [200] * 5)


def test_matrix_game__max_steps_sweep_is_one_vmap():
    env, params = env_of("ipd")
    actions = jnp.zeros((12, 2), jnp.int32)
    sweep = params.replace(max_steps=jnp.array([2, 3, 5], jnp.int32))
    axes = params.replace(max_steps=0, payoffs=None, discount=None)
    out, _ = jax.vmap(scan_fn("ipd"), in_axes=(axes, None))(sweep, actions)
    for row, length in zip(np.asarray(out["done"]), (2, 3, 5), strict=True):
        np.testing.assert_array_equal(
            np.flatnonzero(row) + 1, np.arange(length, 13, length)
        )


# --------------------------------------------------------------------------------------
# episode statistics
# --------------------------------------------------------------------------------------
def test_matrix_game__episode_statistics_count_the_last_step():
    env, params = env_of("ipd")
    # C,D / C,C / D,D / D,C: the last step (D, C) ends the episode of length 4.
    actions = jnp.array([[0, 1], [0, 0], [1, 1], [1, 0]], jnp.int32)
    out, info = jax.device_get(scan_fn("ipd")(params.replace(max_steps=4), actions))
    ep = jax.tree.map(lambda x: x[3], info["episode"])
    assert out["done"][3] and not out["done"][:3].any()
    np.testing.assert_array_equal(ep["return"], [-3 - 1 - 2 + 0, 0 - 1 - 2 - 3])
    assert ep["length"] == 4
    np.testing.assert_allclose(ep["cooperation_rate"], [0.5, 0.5])
    np.testing.assert_array_equal(ep["outcomes"], [1, 1, 1, 1])
    # after the auto-reset the returned observation is START again
    np.testing.assert_array_equal(out["obs"][3], [onehot(START)] * 2)


# --------------------------------------------------------------------------------------
# vmap over payoffs, 1024 copies, jit once
# --------------------------------------------------------------------------------------
def test_matrix_game__sweep_of_8_payoff_tables_is_one_vmap():
    env, params = env_of("ipd")
    tables = jax.random.normal(jax.random.key(3), (8, 2, 2, 2))
    _, state = env.reset(jax.random.key(0), params)
    key = jax.random.key(1)

    @jax.jit
    def rewards_for(tables, actions):
        step = lambda t: env.step(key, state, actions, params.replace(payoffs=t))[2]
        return jax.vmap(step)(tables)

    for a1, a2 in JOINT:
        got = rewards_for(tables, jnp.array([a1, a2], jnp.int32))
        assert got.shape == (8, 2)
        np.testing.assert_array_equal(got, np.asarray(tables)[:, a1, a2])


def test_matrix_game__1024_copies_in_one_vmap_pay_the_table():
    env, params = env_of("ipd")
    n = 1024
    keys = jax.random.split(jax.random.key(0), n)
    actions = jax.random.bernoulli(jax.random.key(1), 0.5, (n, 2)).astype(jnp.int32)
    obs0, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    obs, states, rewards, done, _ = jax.jit(step)(keys, states, actions, params)
    assert obs.shape == (n, 2, 5) and rewards.shape == (n, 2) and done.shape == (n,)
    table = np.asarray(params.payoffs)
    a = np.asarray(actions)
    np.testing.assert_array_equal(rewards, table[a[:, 0], a[:, 1]])
    np.testing.assert_array_equal(obs.argmax(-1), 1 + 2 * a + a[:, ::-1])
    np.testing.assert_array_equal(states.time, np.ones(n))


def test_matrix_game__step_jits_once_across_params_and_actions():
    # chex keys its trace counter on the call stack and source, so the wrapped step
    # is built here, once, rather than in the shared per-environment cache.
    env, params = env_of("chicken")
    step = jax.jit(chex.assert_max_traces(env.step, n=1))
    _, state = reset_fn("chicken")(jax.random.key(0), params)
    other = params.replace(max_steps=9, payoffs=jnp.ones((2, 2, 2)), discount=0.5)
    for i, p in enumerate((params, other, params)):
        state = step(jax.random.key(i), state, jnp.array([i % 2, 1], jnp.int32), p)[1]
    assert int(state.time) == 3


# --------------------------------------------------------------------------------------
# invariants (hypothesis)
# --------------------------------------------------------------------------------------
actions_2 = st.tuples(st.integers(0, 1), st.integers(0, 1))


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(SYMMETRIC), a=actions_2)
def test_matrix_game__symmetric_games_mirror_rewards_and_observations(name, a):
    _, _, (obs, _, r, *_) = first_step(name, list(a))
    _, _, (obs_sw, _, r_sw, *_) = first_step(name, list(a[::-1]))
    assert r[0] == r_sw[1] and r[1] == r_sw[0]
    np.testing.assert_array_equal(obs, obs_sw[::-1])


@settings(max_examples=10, deadline=None)
@given(a=actions_2)
def test_matrix_game__matching_pennies_is_zero_sum(a):
    r = first_step("imp", list(a))[2][2]
    assert float(r.sum()) == 0.0 and abs(float(r[0])) == 1.0


@settings(max_examples=40, deadline=None)
@given(
    table=st.lists(st.floats(-1e3, 1e3, width=32), min_size=8, max_size=8),
    a=actions_2,
)
def test_matrix_game__any_payoff_table_is_paid_exactly(table, a):
    table = np.asarray(table, np.float32).reshape(2, 2, 2)
    _, params = env_of("ipd")
    r = first_step("ipd", list(a), params=params.replace(payoffs=jnp.asarray(table)))[2][
        2
    ]
    np.testing.assert_array_equal(r, table[a[0], a[1]])


# --------------------------------------------------------------------------------------
# N-player prisoner's dilemma
# --------------------------------------------------------------------------------------
def test_n_pd__public_goods_rewards_by_hand():
    env, params = env_of("n_pd", num_agents=4)
    assert env.num_agents == 4 and env.num_actions == 2 and env.obs_shape == (4,)
    # r = 2, c = 1, N = 4.  Three cooperators: pot share 2 * 3 / 4 = 1.5 each.
    obs0, _, (obs, _, r, *_) = first_step("n_pd", [0, 1, 0, 0], num_agents=4)
    np.testing.assert_allclose(r, [0.5, 1.5, 0.5, 0.5])
    np.testing.assert_array_equal(obs0, [[1, 0, 0, 0]] * 4)
    np.testing.assert_allclose(
        obs,
        [[0, 1, 0, 2 / 3], [0, 0, 1, 1], [0, 1, 0, 2 / 3], [0, 1, 0, 2 / 3]],
        rtol=1e-6,
    )
    # all cooperate: (r - 1) c = 1 each; all defect: 0
    np.testing.assert_allclose(first_step("n_pd", [0] * 4, num_agents=4)[2][2], [1.0] * 4)
    np.testing.assert_allclose(first_step("n_pd", [1] * 4, num_agents=4)[2][2], [0.0] * 4)
    # traced params: r = 3, c = 2, two cooperators: 3 * 2 * 2 / 4 = 3 each, minus 2
    p = params.replace(multiplier=3.0, cost=2.0)
    r = first_step("n_pd", [1, 0, 1, 0], params=p, num_agents=4)[2][2]
    np.testing.assert_allclose(r, [3.0, 1.0, 3.0, 1.0])


def test_n_pd__two_players_form_a_prisoners_dilemma():
    # A dilemma needs 1 < r < N: with N = 2, r = 1.5 and c = 1 the table is
    # R = 0.5, S = -0.25, T = 0.75, P = 0.
    _, params = env_of("n_pd", num_agents=2)
    params = params.replace(multiplier=1.5)
    pay = {a: first_step("n_pd", a, params, num_agents=2)[2][2] for a in JOINT}
    np.testing.assert_allclose(pay[(0, 0)], [0.5, 0.5])
    np.testing.assert_allclose(pay[(0, 1)], [-0.25, 0.75])
    np.testing.assert_allclose(pay[(1, 1)], [0.0, 0.0])
    reward, sucker = pay[(0, 0)][0], pay[(0, 1)][0]
    temptation, punishment = pay[(1, 0)][0], pay[(1, 1)][0]
    assert temptation > reward > punishment > sucker
    assert 2 * reward > temptation + sucker


def test_n_pd__episode_statistics():
    env, params = env_of("n_pd")  # N = 3
    actions = jnp.array([[0, 0, 0], [0, 1, 1], [1, 1, 1]], jnp.int32)
    out, info = jax.device_get(scan_fn("n_pd")(params.replace(max_steps=3), actions))
    ep = jax.tree.map(lambda x: x[2], info["episode"])
    assert out["done"][2] and ep["length"] == 3
    np.testing.assert_array_equal(ep["cooperator_counts"], [1, 1, 0, 1])
    np.testing.assert_allclose(ep["cooperation_rate"], [2 / 3, 1 / 3, 1 / 3])
    # returns: step 1 all C: 1 each; step 2: share 2/3, agent 0 pays 1; step 3: 0
    np.testing.assert_allclose(ep["return"], [1 + 2 / 3 - 1, 1 + 2 / 3, 1 + 2 / 3])


@settings(max_examples=30, deadline=None)
@given(
    a=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    perm=st.permutations(range(4)),
)
def test_n_pd__permuting_agents_permutes_rewards_and_observations(a, perm):
    a, perm = np.asarray(a), np.asarray(perm)
    _, _, (obs, _, r, *_) = first_step("n_pd", a, num_agents=4)
    _, _, (obs_p, _, r_p, *_) = first_step("n_pd", a[perm], num_agents=4)
    np.testing.assert_allclose(r_p, np.asarray(r)[perm], rtol=1e-6)
    np.testing.assert_allclose(obs_p, np.asarray(obs)[perm], rtol=1e-6)
    # total welfare is (r - 1) c per cooperator
    np.testing.assert_allclose(float(r.sum()), (2.0 - 1.0) * (a == 0).sum(), rtol=1e-6)


def test_n_pd__fewer_than_two_agents_rejected():
    with pytest.raises(ValueError, match="num_agents"):
        pj.make("n_pd", num_agents=1)


# --------------------------------------------------------------------------------------
# bad params
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, match",
    [
        ({"payoffs": jnp.zeros((2, 2))}, "shape"),
        ({"payoffs": jnp.full((2, 2, 2), jnp.nan)}, "finite"),
        ({"discount": 1.5}, "discount"),
        ({"max_steps": -1}, "max_steps"),
    ],
)
def test_matrix_game__invalid_params_rejected_by_make(override, match):
    with pytest.raises(ValueError, match=match):
        pj.make("ipd", **override)


# --------------------------------------------------------------------------------------
# fixed strategies
# --------------------------------------------------------------------------------------
ROLLOUT_T = 300


@functools.cache
def play_fn():
    env, _ = env_of("ipd")
    return jax.jit(
        lambda key, params, probs: strat.rollout(key, env, params, probs, ROLLOUT_T)
    )


def play(first: str, second, seed=0):
    _, params = env_of("ipd")
    p2 = strat.strategy_probs(second) if isinstance(second, str) else jnp.asarray(second)
    probs = jnp.stack([strat.strategy_probs(first), p2])
    return jax.device_get(play_fn()(jax.random.key(seed), params, probs))


def _episode_start(done: np.ndarray) -> np.ndarray:
    """``start[t]`` true when step ``t`` is the first of an episode."""
    return np.concatenate([[True], done[:-1]])


@pytest.mark.parametrize("name", ["always_cooperate", "always_defect", "tit_for_tat"])
def test_strategies__deterministic_act_on_each_state(name):
    want = {
        "always_cooperate": [0, 0, 0, 0, 0],
        "always_defect": [1, 1, 1, 1, 1],
        "tit_for_tat": [0, 0, 1, 0, 1],  # copies the other's last action (own first)
    }[name]
    keys = jax.random.split(jax.random.key(0), 5)
    probs = strat.strategy_probs(name)
    got = jax.vmap(strat.act, in_axes=(0, None, 0))(keys, probs, jnp.eye(5))
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(got, want)


def test_strategies__tit_for_tat_copies_the_opponents_last_action():
    traj = play("tit_for_tat", "random")
    a, start = traj["actions"], _episode_start(traj["done"])
    assert traj["done"].sum() == ROLLOUT_T // 100  # crosses episode boundaries
    expected = np.where(start, 0, np.roll(a[:, 1], 1))
    np.testing.assert_array_equal(a[:, 0], expected)
    assert 0 < a[:, 0].sum() < ROLLOUT_T  # both branches exercised


def test_strategies__grim_trigger_never_forgives_within_an_episode():
    traj = play("grim_trigger", [0.97] * 5, seed=3)
    a, start = traj["actions"], _episode_start(traj["done"])
    triggered, expected = False, []
    for t in range(ROLLOUT_T):
        triggered = False if start[t] else triggered
        expected.append(int(triggered))
        triggered = triggered or a[t, 1] == 1
    np.testing.assert_array_equal(a[:, 0], expected)
    assert 0 < a[:, 0].sum() < ROLLOUT_T - 10  # it cooperated, then got triggered


@pytest.mark.parametrize("name, rate", [("always_cooperate", 0), ("always_defect", 1)])
def test_strategies__always_c_and_always_d_never_deviate(name, rate):
    a = play(name, "random")["actions"]
    np.testing.assert_array_equal(a[:, 0], rate)


def test_strategies__random_defects_about_half_the_time():
    a = play("random", "random", seed=11)["actions"]  # 600 draws: sd of mean 0.02
    assert abs(a.mean() - 0.5) < 0.1
    # independent of the state: it defects after both C and D of the other player
    prev = np.roll(a[:, 1], 1)[1:]
    for other in (0, 1):
        assert 0.3 < a[1:, 0][prev == other].mean() < 0.7


# --------------------------------------------------------------------------------------
# sampled vs exact
# --------------------------------------------------------------------------------------
@pytest.mark.skipif(
    not os.path.exists(
        os.path.join(os.path.dirname(pj.__file__), "envs/matrix_exact.py")
    ),
    reason="exact game not built yet",
)
def test_sampled_vs_exact__tft_vs_random_discounted_return_matches():
    from pain_jax.envs.matrix_exact import exact_params, exact_values

    env, params = env_of("ipd")
    # 200 steps at discount 0.96: the cut-off tail of the infinite-horizon value is at
    # most 0.96**200 / 0.04 * 3 < 0.03 (3 = largest |payoff|)
    params = params.replace(max_steps=200)
    probs = jnp.stack(
        [strat.strategy_probs("tit_for_tat"), strat.strategy_probs("random")]
    )
    t = 200
    disc = params.discount ** jnp.arange(t)

    @jax.jit
    def discounted_returns(keys):
        traj = jax.vmap(lambda k: strat.rollout(k, env, params, probs, t))(keys)
        return jnp.einsum("btp,t->bp", traj["rewards"], disc)

    returns = np.asarray(discounted_returns(jax.random.split(jax.random.key(0), 1024)))
    exact = np.asarray(exact_values(probs[0], probs[1], exact_params("ipd")))
    sem = returns.std(0) / np.sqrt(len(returns))
    assert np.all(np.abs(returns.mean(0) - exact) < 4 * sem + 0.03), (
        returns.mean(0),
        exact,
        sem,
    )
