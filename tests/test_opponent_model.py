"""Agents learning with different algorithms in one run, and Advantage Alignment's
learned model of the opponents' values: hand-computed advantages, per-agent losses,
bootstrapping of the model at truncation only, the model fitting its targets, and
config errors that name the field."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pain_jax.learn.config import TrainConfig
from pain_jax.learn.opponent_model import OpponentValueModel
from pain_jax.learn.ppo import clipped_policy_loss, per_agent_loss, policy_gradient_loss
from pain_jax.learn.returns import gae, next_values
from pain_jax.learn.train import make_trainer

IPD = dict(
    env="ipd", env_options={"max_steps": 4}, num_envs=2, num_steps=3, num_minibatches=1
)


def test_policy_advantages__aa_agent_aligned_ppo_agent_own_hand_computed():
    # Agent 0 learns with AA, agent 1 with PPO; one copy, 3 steps, one episode.
    # gamma = 0.5, beta = 2.  A0 = [1, 2, 3], A1 = [0.5, -1, 2].
    # Agent 0: S = [0, 0.5, 1.25]; A*_0 = A0 + beta*gamma*S*A1 = [1, 1.5, 5.5].
    # Agent 1 keeps its own GAE advantage [0.5, -1, 2].
    cfg = TrainConfig(**IPD, agent_algorithms=("aa", "ppo"), gamma=0.5, aa_beta=2.0)
    trainer = make_trainer(cfg)
    adv = jnp.array([[1.0, 0.5], [2.0, -1.0], [3.0, 2.0]])[:, None, :]  # (T, E=1, A)
    tr = SimpleNamespace(reset=jnp.array([[True], [False], [False]]))
    out, targets = trainer.policy_advantages(None, None, tr, adv)
    np.testing.assert_allclose(out[:, 0, 0], [1.0, 1.5, 5.5], rtol=1e-6)
    np.testing.assert_allclose(out[:, 0, 1], [0.5, -1.0, 2.0], rtol=1e-6)
    assert targets is None


def test_per_agent_loss__each_agent_gets_its_own_loss_under_vmap():
    key = jax.random.key(0)
    new, old, adv = jax.random.normal(key, (3, 2, 16)) * 0.5
    loss, index = per_agent_loss((clipped_policy_loss, policy_gradient_loss))
    np.testing.assert_array_equal(index, [0, 1])
    out, _ = jax.vmap(loss, in_axes=(0, 0, 0, None, 0))(new, old, adv, 0.2, index)
    expected_0, _ = clipped_policy_loss(new[0], old[0], adv[0], 0.2)
    expected_1, _ = policy_gradient_loss(new[1], old[1], adv[1], 0.2)
    np.testing.assert_allclose(out, [expected_0, expected_1], rtol=1e-6)
    # one loss for every agent: no switch at all
    single, index = per_agent_loss((clipped_policy_loss, clipped_policy_loss))
    np.testing.assert_array_equal(index, [0, 0])


@pytest.fixture(scope="module")
def model():
    m = OpponentValueModel(
        num_agents=2,
        obs_shape=(3,),
        hidden=(16,),
        activation="tanh",
        lr=1e-2,
        max_grad_norm=10.0,
        num_epochs=1,
        gamma=0.9,
        gae_lambda=0.8,
    )
    return m, m.init(jax.random.key(1))


def fake_transitions(key, done, terminated):
    k_obs, k_final, k_reward = jax.random.split(key, 3)
    t, e = done.shape
    return SimpleNamespace(
        obs=jax.random.normal(k_obs, (t, e, 2, 3)),
        final_obs=jax.random.normal(k_final, (t, e, 2, 3)),
        reward=jax.random.normal(k_reward, (t, e, 2)),
        done=done,
        terminated=terminated,
    )


def model_advantages(model_and_state, fields, last_obs):
    m, state = model_and_state
    run = jax.jit(lambda s, f, o: m.advantages(s, SimpleNamespace(**f), o))
    return run(state, fields, last_obs)


def test_opponent_model__advantages_are_gae_of_the_opponents_rewards(model):
    m, state = model
    # Copy 0: truncated at t = 1 (bootstraps from the final observation); copy 1:
    # terminated at t = 2 (no bootstrap).
    done = jnp.array([[False, False], [True, False], [False, True], [False, False]])
    terminated = jnp.array([[False] * 2, [False] * 2, [False, True], [False] * 2])
    tr = fake_transitions(jax.random.key(2), done, terminated)
    last_obs = jax.random.normal(jax.random.key(3), (2, 2, 3))
    adv, targets = model_advantages(model, vars(tr), last_obs)
    assert adv.shape == targets.shape == (4, 2, 2, 2)
    for i in range(2):  # the model of agent i, on agent i's observations
        mine = jax.tree.map(lambda x, i=i: x[i], state.variables)
        v = m.model.apply(mine, tr.obs[:, :, i])
        last = m.model.apply(mine, last_obs[:, i])
        final = m.model.apply(mine, tr.final_obs[:, :, i])
        for j in range(2):  # agent j's value and rewards
            nxt = next_values(v[..., j], last[:, j], final[..., j], done)
            expected, _ = gae(
                tr.reward[..., j], v[..., j], nxt, terminated, done, 0.9, 0.8
            )
            np.testing.assert_allclose(adv[:, :, i, j], expected, rtol=1e-5, atol=1e-6)
    # The final observation matters only where an episode was truncated.
    moved = tr.final_obs.at[0].add(5.0).at[2, 1].add(5.0)  # not done / terminated
    adv2, _ = model_advantages(model, {**vars(tr), "final_obs": moved}, last_obs)
    np.testing.assert_allclose(adv2, adv, rtol=1e-6)
    moved = tr.final_obs.at[1, 0].add(5.0)  # the truncated step
    adv3, _ = model_advantages(model, {**vars(tr), "final_obs": moved}, last_obs)
    assert not np.allclose(adv3[:2, 0], adv[:2, 0])


def test_opponent_model__fits_the_targets(model):
    m, state = model
    # Targets that are a fixed function of each agent's observation.
    obs = jax.random.normal(jax.random.key(4), (8, 4, 2, 3))
    targets = jnp.stack(
        [
            jnp.stack([o[..., 0] - o[..., 1], 0.5 * o[..., 2]], -1)
            for o in jnp.unstack(obs, axis=2)
        ],
        axis=2,
    )  # (T, E, A, A)
    step = jax.jit(m.update)
    first = None
    for _ in range(300):
        state, loss = step(state, obs, targets)
        first = loss if first is None else first
    assert np.all(np.asarray(loss) < 0.1 * np.asarray(first))


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(agent_algorithms=("aa", "nope")), "agent_algorithms"),
        (dict(agent_algorithms="aa"), "agent_algorithms"),
        (dict(opponent_value="oracle"), "opponent_value"),
    ],
)
def test_train_config__invalid_per_agent_fields_are_named(changes, field):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**changes)


def test_make_trainer__agent_algorithms_need_one_name_per_agent():
    with pytest.raises(
        ValueError, match="agent_algorithms.*one name per agent.*2 agents"
    ):
        make_trainer(TrainConfig(**IPD, agent_algorithms=("aa", "ppo", "ppo")))


def test_config_label__names_mixed_learners():
    assert TrainConfig(agent_algorithms=("aa", "ppo")).label == "aa+ppo"
    assert TrainConfig(algorithm="aa_pg").label == "aa_pg"
