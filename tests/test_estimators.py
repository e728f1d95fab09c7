"""GAE, one-step targets, DiCE and batch layout: field cases C06, C14-C17."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pain_jax.learn.batching import (
    broadcast_env_flag,
    flatten_agents,
    reset_rows,
    unflatten_agents,
)
from pain_jax.learn.dice import dice_objective, dice_objective_baseline, magic_box
from pain_jax.learn.returns import (
    discounted_returns,
    gae,
    next_values,
    td_targets,
)

F, T = False, True


def test_gae__c15_bootstrap_hand_computed():
    adv, targets = gae(
        rewards=jnp.array([1.0, 1.0]),
        values=jnp.array([0.0, 0.0]),
        next_value=next_values(
            jnp.array([0.0, 0.0]), jnp.array(10.0), jnp.zeros(2), jnp.array([F, F])
        ),
        terminated=jnp.array([F, F]),
        done=jnp.array([F, F]),
        gamma=1.0,
        lam=1.0,
    )
    np.testing.assert_allclose(adv, [12.0, 11.0])
    np.testing.assert_allclose(targets, [12.0, 11.0])


def _slow_gae(r, v, nv, term, done, gamma, lam):
    adv = np.zeros_like(r)
    running = 0.0
    for t in reversed(range(len(r))):
        delta = r[t] + gamma * (0.0 if term[t] else nv[t]) - v[t]
        running = delta + gamma * lam * (0.0 if done[t] else running)
        adv[t] = running
    return adv


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_gae__c15_matches_slow_reference_loop(seed):
    rng = np.random.default_rng(seed)
    n = 12
    r = rng.normal(size=n).astype(np.float32)
    v = rng.normal(size=n).astype(np.float32)
    nv = rng.normal(size=n).astype(np.float32)
    done = rng.random(n) < 0.3
    term = done & (rng.random(n) < 0.5)
    adv, _ = gae(r, v, nv, term, done, 0.99, 0.95)
    np.testing.assert_allclose(
        adv, _slow_gae(r, v, nv, term, done, 0.99, 0.95), rtol=1e-5, atol=1e-5
    )


def test_td_target__c16_one_step():
    target = td_targets(jnp.array([1.0]), jnp.array([2.0]), jnp.array([F]), 0.9)
    np.testing.assert_allclose(target, [2.8], rtol=1e-6)


def test_discounted_returns__c16_terminal_bootstrap_zero():
    g = discounted_returns(
        jnp.array([1.0, 0.0, 2.0]), jnp.array([F, F, T]), jnp.array(0.0), 0.9
    )
    np.testing.assert_allclose(g[0], 2.62, rtol=1e-6)


def test_gae__c06_truncation_bootstraps_termination_does_not():
    # time limit 3, reward 1 per step, constant critic V = 5, gamma 0.9
    r = jnp.ones(3)
    v = jnp.full(3, 5.0)
    final_v = jnp.full(3, 5.0)  # V(true final obs)
    done = jnp.array([F, F, T])
    nv = next_values(v, jnp.array(5.0), final_v, done)
    trunc_target = td_targets(r, nv, jnp.array([F, F, F]), 0.9)
    term_target = td_targets(r, nv, jnp.array([F, F, T]), 0.9)
    np.testing.assert_allclose(trunc_target[2], 5.5, rtol=1e-6)
    np.testing.assert_allclose(term_target[2], 1.0, rtol=1e-6)


def test_gae__c06_advantages_never_cross_an_episode_boundary():
    # Two episodes back to back; a huge reward in the second must not leak into
    # the first episode's advantages.
    r = jnp.array([0.0, 0.0, 0.0, 1000.0])
    v = jnp.zeros(4)
    done = jnp.array([F, T, F, F])
    nv = next_values(v, jnp.array(0.0), jnp.zeros(4), done)
    adv, _ = gae(r, v, nv, done, done, 0.9, 0.95)
    np.testing.assert_array_equal(adv[:2], [0.0, 0.0])
    assert adv[2] > 0


def test_batching__c14_flatten_unflatten_identity_and_row_order():
    envs, agents = 3, 2
    tags = jnp.arange(envs * agents * 4).reshape(envs, agents, 4)
    tree = {"actor": tags, "critic": tags * 10}
    rows = flatten_agents(tree)
    assert rows["actor"].shape == (6, 4)
    # row e * A + a is (env e, agent a), for actor and critic alike
    np.testing.assert_array_equal(rows["actor"][1 * agents + 1], tags[1, 1])
    np.testing.assert_array_equal(rows["critic"][2 * agents + 0], tags[2, 0] * 10)
    back = unflatten_agents(rows, agents)
    jax.tree.map(np.testing.assert_array_equal, back, tree)
    # with a leading time axis
    timed = jnp.stack([tags, tags + 1])
    np.testing.assert_array_equal(
        unflatten_agents(flatten_agents(timed, env_axis=1), agents, env_axis=1), timed
    )


def test_batching__c14_done_env_resets_exactly_its_rows():
    carry = jnp.ones((6, 5))
    done = jnp.array([F, T, F])  # only environment 1
    out = reset_rows(carry, broadcast_env_flag(done, 2))
    zeroed = np.where(np.all(np.asarray(out) == 0, axis=1))[0]
    np.testing.assert_array_equal(zeroed, [2, 3])


def test_magic_box__value_one_and_derivatives():
    x = jnp.array(0.7)
    assert magic_box(x) == 1.0
    assert jax.grad(magic_box)(x) == pytest.approx(1.0)
    assert jax.grad(jax.grad(magic_box))(x) == pytest.approx(1.0)


def _tabular_logps(theta, actions):
    logp = jax.nn.log_softmax(theta)  # (2,) one-step policy reused every step
    return logp[actions]


def test_dice__first_order_gradient_is_score_function_estimator():
    theta = jnp.array([0.3, -0.2])
    actions = jnp.array([0, 1, 1])
    rewards = jnp.array([1.0, 2.0, -1.0])
    gamma = 0.9

    def obj(th):
        return dice_objective(_tabular_logps(th, actions), rewards, gamma)

    # sum_t gamma^t r_t * sum_{k<=t} grad log pi(a_k)
    g_logp = jax.jacobian(lambda th: _tabular_logps(th, actions))(theta)  # (3, 2)
    cum = jnp.cumsum(g_logp, axis=0)
    expected = jnp.sum((gamma ** jnp.arange(3) * rewards)[:, None] * cum, axis=0)
    np.testing.assert_allclose(jax.grad(obj)(theta), expected, rtol=1e-6)
    assert obj(theta) == pytest.approx(1.0 + 0.9 * 2.0 - 0.81)


def test_dice__c17_baseline_is_detached_at_every_order():
    actions = jnp.array([0, 1, 1, 0])
    rewards = jnp.array([1.0, 0.5, -1.0, 2.0])

    def objective(theta_1, theta_2, w_critic):
        logp = _tabular_logps(theta_1, actions) + _tabular_logps(theta_2, actions)
        values = w_critic * jnp.arange(4.0)  # a learned baseline
        adv = rewards - values
        return dice_objective_baseline(logp, adv, 0.96)

    th1, th2, w = jnp.array([0.1, 0.2]), jnp.array([-0.3, 0.4]), jnp.array(0.5)
    assert jax.grad(objective, argnums=2)(th1, th2, w) == 0.0

    # second-order (opponent-shaping) term: d/dw of <grad_2 obj, grad_2 obj>
    def shaping(wc):
        g2 = jax.grad(objective, argnums=1)(th1, th2, wc)
        g1 = jax.grad(lambda a: jnp.vdot(jax.grad(objective, argnums=1)(a, th2, wc), g2))
        return jnp.sum(g1(th1))

    assert jax.grad(shaping)(w) == 0.0
