"""Actor-critic networks under pain: p = 0 bit identity, finite gradients (checked
against finite differences), acting and re-evaluating with ratio 1, and field cases
C13 (recurrent reset alignment), C21 (guarded operations) and C22 (carry shape)."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pain_jax.nets import ActorCriticCNN, ActorCriticGRU, ActorCriticMLP, safe_div
from pain_jax.pain.acting import act, act_recurrent, evaluate, evaluate_recurrent
from pain_jax.pain.dynamics import DROPOUT, NOISE, OFF, PainParams

B, A, D = 8, 4, 6
KEY = jax.random.key(42)
PAINED = dict(pain_layers=None, pain_logits=True, pain_critic=True)
PLAIN = dict(pain_layers=(), pain_logits=False, pain_critic=False)


def params_for(mode):
    return PainParams(
        sigma=jnp.float32(0.7),
        dropout_rate=jnp.float32(0.2),
        dropout_max=jnp.float32(0.5),
        mode=jnp.int32(mode),
    )


def build(kind, **pain):
    """(model, obs batch (B, ...)) for a feed-forward kind."""
    if kind == "mlp":
        return ActorCriticMLP(A, hidden=(16, 16), **pain), jax.random.normal(KEY, (B, D))
    obs = jax.random.uniform(KEY, (B, 3, 3, 2))
    return ActorCriticCNN(A, conv=(4,), hidden=(16,), **pain), obs


def init(model, *args):
    # Jitted: eager init dispatches (and compiles) every op and switch branch alone.
    rngs = {"params": jax.random.key(1), "pain": jax.random.key(2)}
    return jax.jit(model.init)(rngs, *args)


@functools.cache
def feedforward(kind):
    model, obs = build(kind, **PAINED)
    plain, _ = build(kind, **PLAIN)
    variables = init(model, obs, jnp.zeros(B), params_for(NOISE))
    return model, plain, variables, obs


def gru(**pain):
    return ActorCriticGRU(A, hidden_size=12, embed=16, hidden=(16,), **pain)


@functools.cache
def recurrent():
    model = gru(**PAINED)
    carry = model.initial_carry(B)
    variables = init(
        model,
        carry,
        jnp.zeros((B, D)),
        jnp.zeros(B, bool),
        jnp.zeros(B),
        params_for(NOISE),
    )
    return model, gru(**PLAIN), variables


def _outputs(model, variables, *args):
    out = model.apply(variables, *args, rngs={"pain": jax.random.key(7)})
    pi, value = out[-2:]
    return pi.logits, value, out[0] if len(out) == 3 else value


@functools.cache
def both_nets(kind):
    """Jitted ``(args, level, params) -> (pained outputs, plain outputs)``, one compile
    per kind (level and mode are traced), plus the args to call it with."""
    if kind == "gru":
        model, plain, variables = recurrent()
        reset = jnp.arange(B) % 3 == 0
        args = (jax.random.normal(KEY, (B, 12)), jax.random.normal(KEY, (B, D)), reset)
    else:
        model, plain, variables, obs = feedforward(kind)
        args = (obs,)

    @jax.jit
    def run(args, level, params):
        return (
            _outputs(model, variables, *args, level, params),
            _outputs(plain, variables, *args, level, params),
        )

    return run, args


@pytest.mark.parametrize("kind", ["mlp", "cnn", "gru"])
def test_net__pain_zero_bit_identical_to_net_without_pain(kind):
    run, args = both_nets(kind)
    for mode in (NOISE, DROPOUT):
        pained, clean = run(args, jnp.zeros(B), params_for(mode))
        for x, y in zip(pained, clean, strict=True):
            assert np.asarray(x).tobytes() == np.asarray(y).tobytes()
        # And pain on does change the output (the comparison can fail).
        hurt, clean = run(args, jnp.full(B, 2.0), params_for(mode))
        assert not np.array_equal(hurt[0], clean[0])


def test_gru__initial_carry_shape_and_zeros():  # C22
    for model in (gru(), ActorCriticGRU(3)):
        for batch in (1, 5):
            carry = model.initial_carry(batch)
            chex.assert_shape(carry, (batch, model.hidden_size))
            assert carry.dtype == jnp.float32
            np.testing.assert_array_equal(carry, 0.0)


def test_gru__reset_zeroes_the_carry_before_the_step():
    model, _, _ = recurrent()
    run, (_, obs, _) = both_nets("gru")  # reuses the compiled GRU step
    level, p = jnp.full(B, 1.0), params_for(NOISE)
    busy = jax.random.normal(KEY, (B, 12))
    after_reset = run((busy, obs, jnp.ones(B, bool)), level, p)[0]
    from_zeros = run((model.initial_carry(B), obs, jnp.zeros(B, bool)), level, p)[0]
    for x, y in zip(after_reset, from_zeros, strict=True):  # logits, value, carry
        np.testing.assert_array_equal(x, y)
    kept = run((busy, obs, jnp.zeros(B, bool)), level, p)[0]
    assert not np.array_equal(kept[2], from_zeros[2])


def _loss(model, variables, obs, level, params, key):
    pi, value = model.apply(variables, obs, level, params, rngs={"pain": key})
    actions = jnp.arange(obs.shape[0]) % A
    return (
        -jnp.mean(pi.log_prob(actions))
        - 0.01 * jnp.mean(pi.entropy())
        + jnp.mean(value**2)
    )


@functools.cache
def loss_grad(kind):
    model, _, _, obs = feedforward(kind)
    return jax.jit(jax.grad(lambda v, lvl, p: _loss(model, v, obs, lvl, p, KEY)))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_net__gradients_finite_with_pain_on(kind):
    _, _, variables, _ = feedforward(kind)
    level = jnp.linspace(0.0, 5.0, B)
    for mode in (NOISE, DROPOUT):
        leaves = jax.tree.leaves(loss_grad(kind)(variables, level, params_for(mode)))
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
        assert any(bool(jnp.any(g != 0)) for g in leaves)


def test_mlp__noise_gradient_matches_finite_differences():
    # With its pain key fixed, the noisy loss is a smooth function of the weights.
    model, _, variables, obs = feedforward("mlp")
    level = jnp.full(B, 1.5)
    f = jax.jit(lambda v: _loss(model, v, obs, level, params_for(NOISE), KEY))
    direction = jax.tree.map(
        lambda x: jax.random.normal(jax.random.key(x.size), x.shape), variables
    )
    _, analytic = jax.jvp(f, (variables,), (direction,))
    eps = 1e-2
    shifted = [
        jax.tree.map(lambda x, d, s=s: x + s * eps * d, variables, direction)
        for s in (1.0, -1.0)
    ]
    numeric = (f(shifted[0]) - f(shifted[1])) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-2)


def test_gru__gradients_finite_with_pain_on():
    model, _, variables = recurrent()
    obs = jax.random.normal(KEY, (B, D))

    def loss(v):
        carry, pi, value = model.apply(
            v,
            model.initial_carry(B),
            obs,
            jnp.zeros(B, bool),
            jnp.full(B, 3.0),
            params_for(DROPOUT),
            rngs={"pain": KEY},
        )
        return (
            -jnp.mean(pi.log_prob(jnp.zeros(B, jnp.int32)))
            + jnp.mean(value)
            + jnp.mean(carry)
        )

    leaves = jax.tree.leaves(jax.jit(jax.grad(loss))(variables))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)


@chex.assert_max_traces(n=2)  # one trace per network kind
def _act_eval(model, variables, obs, level, key, params, perm):
    acted = act(model, variables, obs, level, key, params)
    # Re-evaluate the stored rows in another order (as a shuffled minibatch would).
    log_prob, _, value = evaluate(
        model,
        variables,
        obs[perm],
        acted.action[perm],
        acted.pain_level[perm],
        acted.pain_key[perm],
        params,
    )
    other_keys = jax.random.split(jax.random.key(99), obs.shape[0])
    wrong, _, _ = evaluate(
        model, variables, obs, acted.action, acted.pain_level, other_keys, params
    )
    return acted, log_prob, value, wrong


_act_eval_jit = jax.jit(_act_eval, static_argnums=0)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_act__reevaluation_ratio_exactly_one(kind):
    model, _, variables, obs = feedforward(kind)
    perm = jax.random.permutation(KEY, B)
    level = jnp.linspace(0.0, 4.0, B)
    for mode in (NOISE, DROPOUT):
        acted, log_prob, value, wrong = _act_eval_jit(
            model, variables, obs, level, KEY, params_for(mode), perm
        )
        ratio = np.exp(np.asarray(log_prob) - np.asarray(acted.log_prob)[perm])
        np.testing.assert_array_less(np.abs(ratio - 1.0), 1e-6)
        np.testing.assert_allclose(value, np.asarray(acted.value)[perm], atol=1e-6)
        np.testing.assert_array_equal(acted.pain_level, level)
        # Other pain keys give another behaviour: the check above can fail.
        assert np.max(np.abs(np.exp(wrong - acted.log_prob) - 1.0)) > 1e-3


def _gru_rollout(model, variables, params, steps=8, boundary=3):
    """Act for ``steps`` steps with an episode boundary after step ``boundary``.

    Returns stored (obs, reset, done, Acted) with a time axis; ``reset[t]`` is
    ``done[t - 1]`` (true at 0 and at ``boundary + 1``)."""
    keys = jax.random.split(jax.random.key(5), steps)
    obs = jax.random.normal(jax.random.key(6), (steps, B, D))
    levels = jnp.linspace(0.5, 3.0, steps)[:, None] * jnp.ones((steps, B))
    done = (jnp.arange(steps) == boundary)[:, None] & jnp.ones((steps, B), bool)
    reset = jnp.concatenate([jnp.ones((1, B), bool), done[:-1]])

    def step(carry, xs):
        key, o, r, lvl = xs
        carry, acted = act_recurrent(model, variables, carry, o, r, lvl, key, params)
        return carry, acted

    _, acted = jax.lax.scan(step, model.initial_carry(B), (keys, obs, reset, levels))
    return obs, reset, done, acted


@pytest.mark.parametrize("mode", [NOISE, DROPOUT])
def test_gru__c13_recurrent_reset_alignment(mode):
    model, _, variables = recurrent()
    params = params_for(mode)
    obs, reset, done, acted = jax.jit(_gru_rollout, static_argnums=0)(
        model, variables, params
    )

    @jax.jit
    def reeval(flags):
        return evaluate_recurrent(
            model,
            variables,
            model.initial_carry(B),
            obs,
            flags,
            acted.action,
            acted.pain_level,
            acted.pain_key,
            params,
        )[0]

    ratio = np.exp(np.asarray(reeval(reset)) - np.asarray(acted.log_prob))
    assert ratio.shape == (8, B)
    np.testing.assert_array_less(np.abs(ratio - 1.0), 1e-5)  # every step, 3 and 4 too
    # Feeding the post-step done instead breaks the check from step 3 on.
    wrong = np.abs(np.exp(np.asarray(reeval(done)) - np.asarray(acted.log_prob)) - 1.0)
    np.testing.assert_array_less(wrong[:3], 1e-5)
    assert np.all(wrong[3].max() > 1e-5) and wrong[3:].max() > 1e-3


def test_net__c21_masked_action_entropy_and_safe_division_gradients_finite():
    model, _, variables, obs = feedforward("mlp")
    mask = jnp.ones((B, A), bool).at[:, 1].set(False)
    level = jnp.full(B, 2.0)

    def loss(v, params):
        pi, value = model.apply(v, obs, level, params, mask, rngs={"pain": KEY})
        legal = jnp.zeros(B, jnp.int32)
        advantage = safe_div(value - jnp.mean(value), jnp.zeros(B))  # guard's edge
        objective = -pi.log_prob(legal) * advantage - pi.entropy() - pi.log_prob(legal)
        return jnp.mean(objective), pi

    grad_fn = jax.jit(jax.grad(loss, has_aux=True))
    for mode in (OFF, NOISE, DROPOUT):
        grads, pi = grad_fn(variables, params_for(mode))
        np.testing.assert_array_equal(pi.probs[:, 1], 0.0)  # pain cannot unmask
        assert bool(jnp.all(jnp.isfinite(pi.entropy())))
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    # safe_div itself: value and gradient finite at den = 0, exact elsewhere.
    g = jax.grad(lambda d: jnp.sum(safe_div(jnp.ones(2), d)))(jnp.array([0.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, -0.25])
    np.testing.assert_array_equal(safe_div(jnp.ones(2), jnp.array([0.0, 4.0])), [0, 0.25])


def test_act__action_mask_respected_and_reevaluated():
    model, _, variables, obs = feedforward("mlp")
    mask = jnp.ones((B, A), bool).at[:, 1:3].set(False)
    level, params = jnp.full(B, 3.0), params_for(DROPOUT)

    @jax.jit
    def go(key):
        acted = act(model, variables, obs, level, key, params, mask)
        log_prob, _, _ = evaluate(
            model,
            variables,
            obs,
            acted.action,
            acted.pain_level,
            acted.pain_key,
            params,
            mask,
        )
        return acted, log_prob

    for seed in range(5):
        acted, log_prob = go(jax.random.key(seed))
        assert not np.any(np.isin(np.asarray(acted.action), [1, 2]))
        np.testing.assert_array_less(np.abs(np.exp(log_prob - acted.log_prob) - 1), 1e-6)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (3, 3, 4, 8), (64, 64)])
def test_orthogonal_init__same_matrix_as_flax_without_qr(shape):
    # Our QR-free orthogonal init draws the same Gaussian and returns the same Q as
    # flax's (QR with a positive R diagonal), so nothing about initialisation changed.
    import flax.linen as nn

    from pain_jax.nets.common import orthogonal

    key = jax.random.key(3)
    ours = orthogonal(1.7)(key, shape)
    theirs = nn.initializers.orthogonal(1.7)(key, shape)
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    flat = np.asarray(ours).reshape(-1, shape[-1]) / 1.7
    small = min(flat.shape)
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, np.eye(small), atol=2e-5)


def test_network_init__vmapped_init_has_no_qr_custom_call():
    # A batched LAPACK QR inside jit(vmap(train)) deadlocked XLA's CPU thread pool on
    # 2 cores (two QR calls waiting on each other): the inits must not emit one.
    from pain_jax.nets import ActorCriticCNN, ActorCriticGRU
    from pain_jax.pain.dynamics import PainParams

    obs, level = jnp.zeros((1, 3, 3, 4)), jnp.zeros((1,))
    for model, args in (
        (ActorCriticCNN(5), (obs, level, PainParams())),
        (
            ActorCriticGRU(5, obs_ndim=3),
            (jnp.zeros((1, 64)), obs, jnp.ones((1,), bool), level, PainParams()),
        ),
    ):
        init = jax.vmap(lambda k, m=model, a=args: m.init({"params": k, "pain": k}, *a))
        text = str(jax.make_jaxpr(init)(jax.random.split(jax.random.key(0), 4)))
        for primitive in (" qr[", "geqrf", "householder_product"):
            assert primitive not in text, primitive
