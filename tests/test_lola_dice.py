"""LOLA-DiCE on the sampled IPD: estimator, look-ahead gradient, ablation, seeding."""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pain_jax.envs.payoffs import payoff_table
from pain_jax.learn import lola_dice as ld

GAMMA = 0.9


def _exact_value(thetas, player, steps, gamma):
    """Expected discounted return by enumerating every joint action sequence."""
    table = jnp.asarray(payoff_table("ipd"), thetas.dtype)
    total = 0.0
    for seq in itertools.product(range(4), repeat=steps):
        acts = np.array([[a // 2, a % 2] for a in seq], np.int32)  # (T, 2)
        states = np.zeros_like(acts)
        states[1:] = 1 + 2 * acts[:-1] + acts[:-1, ::-1]  # own view, own action first
        rew = table[acts[:, 0], acts[:, 1]]  # (T, 2)
        traj = ld.Trajectory(states[:, None], acts[:, None], rew[:, None])
        prob = jnp.exp(ld.log_probs(thetas, traj).sum())
        disc = gamma ** jnp.arange(steps, dtype=thetas.dtype)
        total = total + prob * jnp.sum(disc * rew[:, player])
    return total


def _thetas(seed, dtype=jnp.float32):
    return 0.7 * jax.random.normal(jax.random.key(seed), (2, 5), dtype)


def _split(f):
    return lambda a, b: f(jnp.stack([a, b]))


def _derivs(f, thetas):
    """First derivatives in both players' logits and the mixed second derivatives."""
    g = jax.grad(_split(f), argnums=(0, 1))(thetas[0], thetas[1])
    h = jax.jacfwd(jax.grad(_split(f)), 1)(thetas[0], thetas[1])  # (5, 5) cross
    return jnp.concatenate([g[0], g[1], h.ravel()])


@pytest.fixture(scope="module")
def two_step():
    """40k sampled two-step episodes, per-episode DiCE derivatives, exact derivatives."""
    thetas = _thetas(0)
    n = 40_000
    traj = ld.rollout(jax.random.key(1), thetas, batch=n, steps=2)
    per_ep = jax.jit(
        jax.vmap(
            lambda tr: _derivs(lambda th: ld.dice_value(th, tr, 0, GAMMA), thetas),
            in_axes=1,
        )
    )
    single = jax.tree.map(lambda x: x[:, :, None], traj)  # (T, n, 1, ...)
    exact = jax.jit(lambda: _derivs(lambda th: _exact_value(th, 0, 2, GAMMA), thetas))()
    return thetas, traj, single, per_ep, exact


def test_dice__sampled_derivatives_match_exact_two_step_ipd(two_step):
    # DiCE's first and mixed second derivatives, per sampled episode, are unbiased:
    # their mean is within a few standard errors of the derivatives of the exact
    # (enumerated) expected return, and the exact values are far from 0 on that scale.
    _, _, single, per_ep, exact = two_step
    per_episode = per_ep(single)
    n = per_episode.shape[0]
    mean = per_episode.mean(0)
    se = per_episode.std(0) / np.sqrt(n)
    assert np.all(np.abs(mean - exact) <= 4.5 * se + 1e-5)
    first, cross = slice(0, 10), slice(10, None)
    assert np.abs(exact[first]).max() > 20 * se[first].max()
    assert np.abs(exact[cross]).max() > 10 * se[cross].max()


def test_dice__batch_mean_baseline_is_unbiased_and_reduces_variance(two_step):
    # The reference code's baseline: subtract each time step's batch-mean reward.
    # Per episode that is DiCE on r_t - c_t with c_t constant; its derivatives (also
    # the mixed second ones) stay unbiased, and the first derivatives' spread drops.
    thetas, traj, single, per_ep, exact = two_step
    centred = single.replace(rewards=single.rewards - traj.rewards.mean(1)[:, None, None])
    per_episode = per_ep(centred)
    n = per_episode.shape[0]
    # the batch objective with centre=True is the mean of these per-episode ones
    batch = jax.jit(
        lambda: _derivs(lambda th: ld.dice_value(th, traj, 0, GAMMA, centre=True), thetas)
    )()
    np.testing.assert_allclose(batch, per_episode.mean(0), rtol=1e-3, atol=1e-4)
    mean, se = per_episode.mean(0), per_episode.std(0) / np.sqrt(n)
    assert np.all(np.abs(mean - exact) <= 4.5 * se + 1e-5)
    se_plain = per_ep(single).std(0) / np.sqrt(n)
    first = slice(0, 10)
    assert np.linalg.norm(se[first]) < 0.8 * np.linalg.norm(se_plain[first])


def test_dice__value_baseline_is_unbiased(two_step):
    # sum_t gamma^t (G_t - V(s_t)) [box(W<=t) - box(W<t)] with an arbitrary tabular V:
    # first and mixed second derivatives per episode still average to the exact ones.
    thetas, _, single, _, exact = two_step
    values = jnp.array([-3.0, -1.0, 2.0, -4.0, 0.5])
    per_ep = jax.jit(
        jax.vmap(
            lambda tr: _derivs(
                lambda th: ld.dice_value(th, tr, 0, GAMMA, values), thetas
            ),
            in_axes=1,
        )
    )
    per_episode = per_ep(single)
    mean, se = per_episode.mean(0), per_episode.std(0) / np.sqrt(per_episode.shape[0])
    assert np.all(np.abs(mean - exact) <= 4.5 * se + 1e-5)


def test_discounted_per_step__hand_computed():
    # (1 - gamma) sum_t gamma^t r_t, batch mean, gamma 0.5.  Player 1 gets -1, -3 in
    # episode 1 and -2, 0 in episode 2 -> 0.5 * mean(-2.5, -2) = -1.125; player 2 gets
    # 0, 0 and -3, -1 -> 0.5 * mean(0, -3.5) = -0.875.  Undiscounted means -1.5, -1.
    rew = jnp.array([[[-1.0, 0.0], [-2.0, -3.0]], [[-3.0, 0.0], [0.0, -1.0]]])
    traj = ld.Trajectory(
        jnp.zeros((2, 2, 2), jnp.int32), jnp.zeros((2, 2, 2), jnp.int32), rew
    )
    np.testing.assert_allclose(ld.discounted_per_step(traj, 0.5), [-1.125, -0.875])
    np.testing.assert_allclose(ld.per_step_returns(traj), [-1.5, -1.0])


def test_init_state__truncated_normal_logits_and_config_checks():
    cfg = ld.LolaDiceConfig()
    th = jax.vmap(lambda k: ld.init_state(k, cfg).thetas)(
        jax.random.split(jax.random.key(0), 400)
    )
    assert np.abs(th).max() <= 2 * cfg.init_std + 1e-6
    # std of a normal truncated at 2 std: 0.880 of the untruncated one
    np.testing.assert_allclose(np.std(th), 0.880 * cfg.init_std, rtol=0.05)
    zero = ld.init_state(jax.random.key(1), ld.LolaDiceConfig(init_std=0.0)).thetas
    np.testing.assert_array_equal(zero, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="baseline"):
        ld.LolaDiceConfig(baseline="critic")
    with pytest.raises(ValueError, match="optimizer"):
        ld.LolaDiceConfig(optimizer="rmsprop")


def test_update__outer_step_is_plain_sgd_or_adam():
    # The outer optimiser that update() uses: SGD moves each logit by lr * gradient;
    # Adam's first step moves every logit by lr whatever the gradient's size.
    grad = jnp.array([[0.5, -2.0, 4.0, 0.1, -0.3], [1.0, 0.0, -1.0, 3.0, 0.2]])
    thetas = jnp.zeros((2, 5))

    def first_step(optimizer):
        opt, _ = ld._optimizers(ld.LolaDiceConfig(lr_out=0.1, optimizer=optimizer))
        upd, _ = opt.update(-grad, opt.init(thetas), thetas)  # ascent, as update() does
        return np.asarray(upd)

    np.testing.assert_allclose(first_step("sgd"), 0.1 * grad, rtol=1e-6)
    adam = first_step("adam")
    moved = np.asarray(grad) != 0
    np.testing.assert_allclose(adam[moved], 0.1 * np.sign(grad)[moved], rtol=1e-3)
    np.testing.assert_allclose(adam[~moved], 0.0, atol=1e-6)


def _fixed_trajs(seed, k, thetas, batch=6, steps=8):
    keys = jax.random.split(jax.random.key(seed), k + 1)
    return [ld.rollout(kk, thetas, batch, steps) for kk in keys]


def _importance_weighted(thetas, traj, player, refs, values, centre=False):
    """The sampled objective as a function of the parameters with the actions fixed:
    DiCE's magic box ``exp(W - stop_gradient(W))`` becomes the likelihood ratio
    ``exp(W - W_ref)`` with ``W_ref`` frozen at the reference parameters, so its
    derivatives at the reference equal DiCE's (an independent re-implementation)."""
    w = jnp.cumsum(ld.log_probs(thetas, traj), axis=0)
    ratio = jnp.exp(w - refs)
    r = traj.rewards[..., player]
    disc = GAMMA ** jnp.arange(r.shape[0], dtype=r.dtype)[:, None]
    if values is None:
        if centre:  # a constant per time step: the batch mean of that step's rewards
            r = r - r.sum(axis=1, keepdims=True) / r.shape[1]
        return jnp.mean(jnp.sum(disc * r * ratio, axis=0))
    adv = ld.rewards_to_go(r, GAMMA) - values[player][traj.states[..., player]]
    before = jnp.concatenate([jnp.ones_like(ratio[:1]), ratio[:-1]])
    return jnp.mean(jnp.sum(disc * adv * (ratio - before), axis=0))


def _lookahead_is(theta_me, theta_opp, me, trajs, refs, values, lr_in, centre=False):
    """``k = len(trajs) - 1`` look-ahead steps on the importance-weighted objective.

    ``refs=None`` records ``W`` at the given parameters (the reference pass)."""
    pair = (
        (lambda a, b: jnp.stack([a, b])) if me == 0 else (lambda a, b: jnp.stack([b, a]))
    )
    recorded = []

    def ref(j, thetas):
        if refs is not None:
            return refs[j]
        recorded.append(jnp.cumsum(ld.log_probs(thetas, trajs[j]), axis=0))
        return recorded[-1]

    for j in range(len(trajs) - 1):
        w_ref = ref(j, pair(theta_me, theta_opp))
        grad = jax.grad(
            lambda o, j=j, w_ref=w_ref: _importance_weighted(
                pair(theta_me, o), trajs[j], 1 - me, w_ref, values, centre
            )
        )(theta_opp)
        theta_opp = theta_opp + lr_in * grad
    w_ref = ref(len(trajs) - 1, pair(theta_me, theta_opp))
    out = _importance_weighted(
        pair(theta_me, theta_opp), trajs[-1], me, w_ref, values, centre
    )
    return out, recorded


@pytest.mark.parametrize(
    ("me", "baseline"), [(0, "none"), (1, "value"), (0, "batch_mean")]
)
def test_shaped_objective__lookahead_gradient_matches_finite_differences(me, baseline):
    # d/dtheta_me DiCE_me(theta_me, theta_opp^(2)) with two opponent look-ahead steps
    # (graph kept through theta_me), actions fixed, vs central differences of the
    # importance-weighted objective.
    with jax.enable_x64(True):
        cfg = ld.LolaDiceConfig(lookahead=2, gamma=GAMMA, lr_in=0.5, baseline=baseline)
        centre = baseline == "batch_mean"
        thetas = _thetas(3, jnp.float64)
        values = (
            -jnp.arange(10.0, dtype=jnp.float64).reshape(2, 5)
            if baseline == "value"
            else None
        )
        trajs = _fixed_trajs(4, 2, thetas)
        t_me, t_opp = thetas[me], thetas[1 - me]

        grad = jax.jit(
            jax.grad(
                lambda t: ld.shaped_objective(
                    t, t_opp, me, lambda j, _: trajs[j], cfg, values
                )
            )
        )(t_me)
        value, refs = _lookahead_is(
            t_me, t_opp, me, trajs, None, values, cfg.lr_in, centre
        )
        f = jax.jit(
            lambda t: _lookahead_is(t, t_opp, me, trajs, refs, values, cfg.lr_in, centre)[
                0
            ]
        )
        np.testing.assert_allclose(f(t_me), value, rtol=1e-12, atol=1e-12)
        eps = 1e-5
        fd = np.array(
            [
                (f(t_me.at[i].add(eps)) - f(t_me.at[i].add(-eps))) / (2 * eps)
                for i in range(5)
            ]
        )
        rel = np.abs(np.asarray(grad) - fd).max() / np.abs(fd).max()
        assert rel < 1e-3
        # the look-ahead matters: without the graph through theta_me (opponent's
        # shaped parameters held constant) the gradient is clearly different
        cut = dataclasses.replace(cfg, lookahead=0)
        t_opp_k = t_opp
        for j in range(2):
            g2 = jax.grad(
                lambda o, j=j: ld.dice_value(
                    jnp.stack([t_me, o][:: 1 - 2 * me]),
                    trajs[j],
                    1 - me,
                    GAMMA,
                    None if values is None else values[1 - me],
                    centre=centre,
                )
            )(t_opp_k)
            t_opp_k = t_opp_k + cfg.lr_in * g2
        g_cut = jax.grad(ld.shaped_objective)(
            t_me, t_opp_k, me, lambda j, _: trajs[2], cut, values
        )
        assert np.abs(np.asarray(grad - g_cut)).max() > 1e-2 * np.abs(fd).max()


def test_shaped_objective__sampled_gradient_equals_fixed_action_gradient():
    # Sampling inside the look-ahead uses detached parameters, so its gradient is
    # that of the same objective with the sampled actions held fixed.
    cfg = ld.LolaDiceConfig(lookahead=1, gamma=GAMMA, batch=5, steps=6)
    thetas = _thetas(5)
    keys = jax.random.split(jax.random.key(6), 2)
    recorded = []

    def sample(j, th):
        traj = ld.rollout(keys[j], th, cfg.batch, cfg.steps)
        recorded.append(traj)
        return traj

    ld.shaped_objective(thetas[0], thetas[1], 0, sample, cfg)  # records the actions
    fixed = list(recorded)

    def sample_again(j, th):
        return ld.rollout(keys[j], th, cfg.batch, cfg.steps)

    def grad(sampler):
        return jax.jit(
            jax.grad(lambda t: ld.shaped_objective(t, thetas[1], 0, sampler, cfg))
        )(thetas[0])

    g_sampled, g_fixed = grad(sample_again), grad(lambda j, _: fixed[j])
    np.testing.assert_allclose(g_sampled, g_fixed, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("baseline", ld.BASELINES)
def test_shaped_objective__without_magic_box_shaping_term_vanishes(baseline):
    # With the first-order surrogate the opponent's step does not depend on theta_me,
    # so the look-ahead gradient is the naive gradient at the (constant) shaped
    # opponent; with the magic box it is not.
    thetas = _thetas(7)
    trajs = _fixed_trajs(8, 1, thetas)
    values = jnp.full((2, 5), -3.0) if baseline == "value" else None
    centre = baseline == "batch_mean"

    def gaps(magic_box):
        cfg = ld.LolaDiceConfig(
            lookahead=1, gamma=GAMMA, lr_in=0.5, magic_box=magic_box, baseline=baseline
        )
        obj = ld.shaped_objective

        def f(t):
            return obj(t, thetas[1], 0, lambda j, _: trajs[j], cfg, values)

        def opp_after(t):  # theta_2 after one look-ahead step, as a function of theta_1
            return cfg.lr_in * jax.grad(
                lambda o: ld.dice_value(
                    jnp.stack([t, o]),
                    trajs[0],
                    1,
                    GAMMA,
                    None if values is None else values[1],
                    magic_box,
                    centre,
                )
            )(thetas[1])

        opp_const = jax.lax.stop_gradient(thetas[1] + opp_after(thetas[0]))
        g_naive = jax.grad(
            lambda t: ld.dice_value(
                jnp.stack([t, opp_const]),
                trajs[1],
                0,
                GAMMA,
                None if values is None else values[0],
                magic_box,
                centre,
            )
        )(thetas[0])
        g = jax.grad(f)(thetas[0])
        return jnp.abs(g - g_naive).max(), jnp.abs(
            jax.jacobian(opp_after)(thetas[0])
        ).max()

    gap_plain, dopp_plain = jax.jit(gaps, static_argnums=0)(False)
    gap_box, dopp_box = jax.jit(gaps, static_argnums=0)(True)
    assert dopp_plain == 0.0 and gap_plain < 1e-6
    assert dopp_box > 1e-2 and gap_box > 1e-3


@pytest.fixture(scope="module")
def tiny_train():
    cfg = ld.LolaDiceConfig(lookahead=1, batch=3, steps=4, updates=2)
    return jax.jit(jax.vmap(ld.make_train(cfg)))


def test_update__no_key_is_reused():
    # C18: one full iteration (look-ahead and outer rollouts of both players, value
    # fit, evaluation batch) traced under JAX's key-reuse checker.  (Checked without
    # vmap: under vmap the checker reports scan keys as consumed even when distinct.)
    cfg = ld.LolaDiceConfig(lookahead=1, batch=3, steps=4, baseline="value")
    state = ld.init_state(jax.random.key(3), cfg)
    with jax.debug_key_reuse(True):
        new, _ = jax.jit(ld.update, static_argnums=2)(jax.random.key(4), state, cfg)
    assert np.isfinite(np.asarray(new.thetas)).all()


def test_make_train__seeds_decide_everything(tiny_train):
    keys = jax.random.split(jax.random.key(0), 2)
    keys = jnp.stack([keys[0], keys[0], keys[1]])
    state, metrics, final = tiny_train(keys)
    thetas, rets = np.asarray(state.thetas), np.asarray(metrics["returns"])
    np.testing.assert_array_equal(thetas[0], thetas[1])
    np.testing.assert_array_equal(rets[0], rets[1])
    assert not np.array_equal(rets[0], rets[2])
    assert not np.array_equal(thetas[0], thetas[2])
    assert np.isfinite(thetas).all() and rets.shape == (3, 2, 2)
    # a second call with the same keys is bit-identical too (no hidden state)
    state2, _, _ = tiny_train(keys)
    np.testing.assert_array_equal(np.asarray(state2.thetas), thetas)
