"""Recording trained agents for the probes: episode groups and the probe datasets by
hand, and (with the pain gridworld) a recorded rollout that keeps the events of an
episode's last step and the GRU state each action came from."""

import jax
import numpy as np
import pytest

from pain_jax.analysis.record import episode_groups, probe_data, record_rollout
from pain_jax.learn.config import TrainConfig
from pain_jax.learn.train import make_trainer


def test_episode_groups__distinct_ids_per_episode_and_copy():
    reset = np.array([[1, 1], [0, 0], [1, 0], [0, 1]], bool)
    # copy 0: episodes [0, 1], [2, 3]; copy 1: [0, 1, 2], [3]
    np.testing.assert_array_equal(episode_groups(reset), [[1, 3], [1, 3], [2, 3], [2, 4]])
    # a recording that starts mid-episode still opens a group at t = 0
    np.testing.assert_array_equal(episode_groups(np.zeros((2, 1), bool)), [[1], [1]])


def test_probe_data__pairs_read_b_for_a_by_hand():
    t, e, a, h = 3, 2, 2, 4
    rng = np.random.default_rng(0)
    rec = {
        "hidden": rng.normal(size=(t, e, a, h)).astype(np.float32),
        "obs": rng.normal(size=(t, e, a, 5)).astype(np.float32),
        "action": rng.integers(0, 8, size=(t, e, a)),
        "pain": np.array([[[0.0, 1.0], [2.0, 0.0]]] * t, np.float32),
        "harm": np.zeros((t, e, a, a), np.float32),
        "reset": np.array([[1, 1], [0, 0], [0, 1]], bool),
    }
    rec["harm"][1, 0, 1, 0] = 0.5  # at t = 1 in copy 0, agent 1 harms agent 0
    data = probe_data(rec, [(0, 1), (1, 0)])
    n = t * e
    assert data["features"]["hidden"].shape == (2 * n, h)
    # pair (A=0, B=1): B's hidden state, A's pain and action
    np.testing.assert_array_equal(
        data["features"]["hidden"][:n], rec["hidden"][:, :, 1].reshape(n, h)
    )
    np.testing.assert_array_equal(data["pain"][:n], rec["pain"][:, :, 0].reshape(n))
    np.testing.assert_array_equal(
        data["action_next"][n:], rec["action"][:, :, 1].reshape(n)
    )
    harm = np.zeros(2 * n, np.int32)
    harm[1 * e + 0] = 1  # row (t=1, e=0) of the first pair only
    np.testing.assert_array_equal(data["harm_next"], harm)
    np.testing.assert_array_equal(
        data["in_pain"][:n], rec["pain"][:, :, 0].reshape(n) > 0
    )
    # groups never shared between pairs
    assert not set(data["groups"][:n]) & set(data["groups"][n:])


@pytest.fixture(scope="module")
def grid_trainer():
    config = TrainConfig(
        env="pain_grid",
        env_options={"num_agents": 2, "size": 5, "num_hazards": 2, "max_steps": 4},
        network="gru",
        hidden=(8,),
        gru_hidden=8,
        pain_mode="off",  # no noise: the carry is a function of the inputs alone
        observe_others_pain=True,
        num_envs=2,
        num_steps=4,
        num_minibatches=1,
    )
    return make_trainer(config)


def test_record_rollout__events_and_hidden_states(grid_trainer):
    trainer = grid_trainer
    variables = jax.jit(trainer.init)(jax.random.key(0)).variables
    rec = record_rollout(trainer, variables, jax.random.key(1), 3, 9, keep_states=True)
    assert rec["hidden"].shape == (9, 3, 2, 8) and rec["harm"].shape == (9, 3, 2, 2)
    np.testing.assert_array_equal(rec["done"][:, 0], [0, 0, 0, 1, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(rec["reset"][1:], rec["done"][:-1])
    assert np.all(np.isfinite(rec["hidden"])) and np.any(rec["hidden"] != 0)
    # the GRU state each action came from: the policy's act on the recorded carry
    # before the step reproduces the recorded state
    policy, pain = trainer.policy, trainer.env_params.pain
    mine = jax.tree.map(lambda x: x[0], variables)
    t = 5  # a step inside the second episode: its carry continues from t - 1
    carry, _ = policy.act(
        mine,
        rec["hidden"][t - 1, :, 0],
        rec["obs"][t, :, 0],
        rec["reset"][t],
        rec["pain"][t, :, 0],
        jax.random.key(7),
        pain,
    )
    np.testing.assert_allclose(carry, rec["hidden"][t, :, 0], rtol=1e-5, atol=1e-6)
    # states after the auto-reset start at time 0 where an episode ended
    assert np.all(rec["states"].time[rec["done"]] == 0)
    # the seen-pain channel of the observation is non-negative
    assert rec["obs"].shape[-1] == trainer.env.obs_shape[-1]
