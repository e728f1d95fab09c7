"""PainWrapper: pain driven by the rewards of real environments, felt and seen pain in
flat and spatial observations, truthful spaces, and resets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pain_jax as pj
from pain_jax.pain.dynamics import PainParams
from pain_jax.pain.wrapper import PainEnvState, PainWrapper

C, D = 0, 1
KEY = jax.random.key(0)
# IPD payoffs (-1,-1) (-3,0) (0,-3) (-2,-2): a sucker's payoff of -3 hurts 1.5.
IPD_PAIN = PainParams(threshold=-1.5, scale=1.0, decay=0.5, linger=1, cap=10.0)


def ipd(observe_own=True, observe_others=True, max_steps=100, **kw):
    env, params = pj.make("ipd", max_steps=max_steps)
    wrapped = PainWrapper(env, observe_own, observe_others, **kw)
    return wrapped, wrapped.wrap_params(params, IPD_PAIN)


def test_wrapper__ipd_hand_computed_felt_and_seen_pain():
    env, params = ipd()
    step = jax.jit(env.step)
    obs, state = env.reset(KEY, params)
    np.testing.assert_array_equal(obs[:, 5:], 0.0)
    levels, seen = [], []
    for a in [(C, D), (C, C), (C, C), (D, D)]:
        obs, state, rewards, done, info = step(KEY, state, jnp.array(a), params)
        levels.append(np.asarray(state.pain.level))
        seen.append(np.asarray(obs[:, 5:]))
        np.testing.assert_array_equal(info["pain"].level, state.pain.level)
    # (C, D): -3 hurts player 1 by 1.5; (C, C): -1 is calm, lingers 0.75 for N = 1;
    # next calm step 0; (D, D): -2 hurts both by 0.5.
    expected = [[1.5, 0.0], [0.75, 0.0], [0.0, 0.0], [0.5, 0.5]]
    np.testing.assert_allclose(levels, expected)
    for lv, s in zip(levels, seen, strict=True):
        # Row i: own level, then the other's level.
        np.testing.assert_allclose(s, [[lv[0], lv[1]], [lv[1], lv[0]]])
    assert env.obs_shape == (7,) and obs.shape == (2, 7)


def test_wrapper__features_follow_the_options():
    for own, others, width in [(False, False, 5), (True, False, 6), (False, True, 6)]:
        env, params = ipd(own, others)
        obs, state = env.reset(KEY, params)
        obs, state, *_ = env.step(KEY, state, jnp.array([C, D]), params)
        assert obs.shape == (2, width) == (2,) + env.obs_shape
        if own and not others:
            np.testing.assert_allclose(obs[:, 5], [1.5, 0.0])
        if others and not own:
            np.testing.assert_allclose(obs[:, 5], [0.0, 1.5])


def test_wrapper__no_observed_pain_leaves_observations_untouched():
    env, params = ipd(False, False)
    inner, inner_params = pj.make("ipd")
    obs, state = env.reset(KEY, params)
    inner_obs, inner_state = inner.reset(KEY, inner_params)
    for a in [(C, D), (D, D)]:
        obs, state, r, *_ = env.step(KEY, state, jnp.array(a), params)
        inner_obs, inner_state, inner_r, *_ = inner.step(
            KEY, inner_state, jnp.array(a), inner_params
        )
        np.testing.assert_array_equal(obs, inner_obs)
        np.testing.assert_array_equal(r, inner_r)
    assert env.observation_space(params) == inner.observation_space(inner_params)


def test_wrapper__episode_end_resets_pain_and_keeps_final_pain_in_info():
    env, params = ipd(max_steps=2)
    obs, state = env.reset(KEY, params)
    obs, state, _, done, _ = env.step(KEY, state, jnp.array([D, C]), params)
    assert not bool(done)
    obs, state, _, done, info = env.step(KEY, state, jnp.array([D, C]), params)
    assert bool(done)
    np.testing.assert_allclose(info["pain"].level, [0.0, 1.5])  # pain of the last step
    np.testing.assert_allclose(info["final_obs"][:, 5:], [[0.0, 1.5], [1.5, 0.0]])
    np.testing.assert_array_equal(state.pain.level, 0.0)  # the new episode starts calm
    np.testing.assert_array_equal(obs[:, 5:], 0.0)
    assert int(state.time) == 0
    # Without reset_on_done pain carries over into the next episode.
    env2, params2 = ipd(max_steps=2, reset_on_done=False)
    _, s2 = env2.reset(KEY, params2)
    for _ in range(2):
        obs2, s2, _, done2, _ = env2.step(KEY, s2, jnp.array([D, C]), params2)
    assert bool(done2)
    np.testing.assert_allclose(s2.pain.level, [0.0, 1.5])
    np.testing.assert_allclose(obs2[:, 5:], [[0.0, 1.5], [1.5, 0.0]])


def test_wrapper__per_agent_pain_params():
    env, params = ipd()
    params = params.replace(pain=IPD_PAIN.replace(threshold=jnp.array([-1.5, 1.0])))
    _, state = env.reset(KEY, params)
    _, state, *_ = env.step(KEY, state, jnp.array([C, D]), params)
    np.testing.assert_allclose(state.pain.level, [1.5, 1.0])  # 1 - 0 hurts player 2


def _coin(num_agents, flat=False, own=True, others=True):
    env, params = pj.make("coin_game", num_agents=num_agents, grid_size=3, flat=flat)
    wrapped = PainWrapper(env, own, others)
    # Losing a coin (-2) or no pickup (0) below threshold 0.5 hurts.
    pain = PainParams(threshold=0.5, scale=1.0, decay=0.9, linger=3, cap=4.0)
    return wrapped, wrapped.wrap_params(params, pain)


def _rollout(env, params, steps, copies=4):
    """Random actions in ``copies`` vmapped copies; returns stacked (obs, state, info)."""

    def one(key):
        obs, state = env.reset(key, params)

        def step(carry, key):
            obs, state = carry
            k_act, k_step = jax.random.split(key)
            actions = jax.random.randint(k_act, (env.num_agents,), 0, env.num_actions)
            obs, state, rewards, done, info = env.step(k_step, state, actions, params)
            return (obs, state), (obs, state, rewards, info["pain"].level)

        return jax.lax.scan(step, (obs, state), jax.random.split(key, steps))[1]

    return jax.jit(jax.vmap(one))(jax.random.split(KEY, copies))


@pytest.mark.parametrize("flat", [False, True])
def test_wrapper__coin_game_spatial_channels_and_truthful_space(flat):
    env, params = _coin(3, flat=flat)
    obs, states, rewards, levels = _rollout(env, params, steps=12)
    space = env.observation_space(params)
    assert obs.shape[3:] == space.shape == env.obs_shape  # (copies, T, A, *obs)
    assert obs.dtype == space.dtype == jnp.float32
    assert bool(space.contains(obs))
    assert space.high == 4.0 and space.low == 0.0  # the cap bounds the pain features
    assert float(levels.max()) > 0  # random play does hurt
    lv = np.asarray(states.pain.level)  # (copies, T, A), what obs carry (no reset here)
    feats = np.asarray(obs)[..., -3:]  # own, then others (increasing index, skip self)
    if not flat:
        # Constant channels: every cell of a pain channel holds the same value.
        assert np.all(feats == feats[..., :1, :1, :])
        feats = feats[..., 0, 0, :]
    others = {0: [1, 2], 1: [0, 2], 2: [0, 1]}
    for i in range(3):
        np.testing.assert_array_equal(feats[:, :, i, 0], lv[..., i])
        np.testing.assert_array_equal(feats[:, :, i, 1:], lv[..., others[i]])
    # Copies differ: pain is carried per environment copy.
    assert not np.array_equal(lv[0], lv[1])


def test_wrapper__pain_matches_dynamics_on_returned_rewards():
    env, params = _coin(2, own=False, others=False)
    _, states, rewards, levels = _rollout(env, params, steps=20, copies=2)
    from pain_jax.pain.dynamics import pain_trace

    for c in range(2):
        _, expected = pain_trace(rewards[c], params.pain)  # max_steps 50: no reset
        np.testing.assert_allclose(levels[c], expected, rtol=1e-6)
        np.testing.assert_allclose(states.pain.level[c], expected, rtol=1e-6)


def test_wrapper__state_contract():
    env, params = _coin(2)
    _, state = env.reset(KEY, params)
    assert isinstance(state, PainEnvState)
    assert state.pain.level.shape == (2,) and state.pain.level.dtype == jnp.float32
    assert state.pain.calm.dtype == jnp.int32 and state.time.dtype == jnp.int32
    np.testing.assert_array_equal(env.pain_level(state), 0.0)
    env.validate_params(params)
    with pytest.raises(ValueError, match="decay"):
        env.validate_params(params.replace(pain=params.pain.replace(decay=2.0)))
    assert env.action_space(params).n == 5 and env.num_agents == 2


def test_pain_wrapper__placed_pain_shows_on_the_agents_in_view():
    # pain_grid can place the others' pain in each viewer's window: agent 0 at (1, 1)
    # and agent 1 at (1, 2) on a 5x5 grid, view radius 1 (3x3 windows, no rotation).
    # Viewer 0 sees agent 1 one column to its right, viewer 1 sees agent 0 to its left;
    # an agent never sees its own pain there, and an agent out of view is not seen.
    import pain_jax as pj
    from pain_jax.envs.pain_grid import make_state

    base, _ = pj.make("pain_grid", num_agents=3, size=5, view_radius=1)
    env = PainWrapper(base, observe_others=True)
    assert env.placed_pain and env.obs_shape == base.obs_shape[:-1] + (
        base.obs_shape[-1] + 1,
    )
    state = make_state(base, [(1, 1), (1, 2), (4, 4)])
    level = jnp.array([0.5, 2.0, 3.0])
    seen = env.observe(base.get_obs(state), level, state)[..., -1]  # (A, 3, 3)
    expected = np.zeros((3, 3, 3), np.float32)
    expected[0, 1, 2] = 2.0
    expected[1, 1, 0] = 0.5
    np.testing.assert_array_equal(seen, expected)
