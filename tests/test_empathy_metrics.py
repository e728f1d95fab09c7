"""Empathy metrics: hand-computed rates and retaliation on tiny event arrays (with a
window that would cross an episode boundary), resonance against its shift control."""

import json
import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pain_jax.analysis.empathy import (
    empathy_report,
    pair_rates,
    resonance,
    retaliation,
    valid_window_starts,
)

# Two episodes of 4 steps (t = 0..3 and 4..7), one environment, two agents.
RESET = np.array([1, 0, 0, 0, 1, 0, 0, 0], bool)
HARM = np.zeros((8, 2, 2), np.float32)
HARM[[0, 2, 4], 0, 1] = 1.0  # agent 0 harms agent 1
HARM[[1, 3, 7], 1, 0] = 0.5  # agent 1 harms agent 0
HELP = np.zeros((8, 2, 2), np.float32)
HELP[5, 0, 1] = 2.0
PAIN = np.zeros((8, 2), np.float32)
PAIN[[1, 2], 0] = 1.0


def test_valid_window_starts__never_cross_episode_or_recording_end():
    # window 2: t = 0, 1 and 4, 5 keep t+1..t+2 inside their episode
    expected = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)[:, None]
    np.testing.assert_array_equal(valid_window_starts(RESET, 2), expected)
    assert not valid_window_starts(RESET, 8).any()


def test_pair_rates__hand_computed():
    harm = pair_rates(HARM)
    assert harm[0, 1] == pytest.approx(3 / 8) and harm[1, 0] == pytest.approx(3 / 8)
    assert np.isnan(harm[0, 0]) and np.isnan(harm[1, 1])
    assert pair_rates(HELP)[0, 1] == pytest.approx(1 / 8)
    assert pair_rates(HARM, eps=0.5)[1, 0] == 0.0  # eps is a strict threshold


def test_retaliation__hand_computed_with_boundary_window_excluded():
    r = retaliation(HARM, RESET, window=2)
    # 0->1 at t=0 (answered at t=1), t=2 (window 3..4 crosses the boundary: ignored,
    # although 1 harms 0 at t=3), t=4 (not answered in 5..6)
    assert r["n_provocations"][0, 1] == 2 and r["n_retaliations"][0, 1] == 1
    # baseline windows starting at t = 0, 1, 4, 5: 1 harms 0 in {1,2}, {2,3}, {6,7}
    assert r["n_windows"][0, 1] == 4 and r["n_windows_with_harm"][0, 1] == 3
    assert r["p_given_harm"][0, 1] == pytest.approx(0.5)
    assert r["p_baseline"][0, 1] == pytest.approx(0.75)
    assert r["ratio"][0, 1] == pytest.approx(2 / 3)
    assert r["difference"][0, 1] == pytest.approx(-0.25)
    # 1->0 at t=1 (answered at t=2); t=3 and t=7 have no complete window
    assert r["n_provocations"][1, 0] == 1 and r["p_given_harm"][1, 0] == 1.0
    assert r["p_baseline"][1, 0] == pytest.approx(0.5)  # 0 harms 1 in {1,2}, {2,3}
    pooled = r["pooled"]
    assert (pooled["n_provocations"], pooled["n_retaliations"]) == (3, 2)
    assert pooled["p_given_harm"] == pytest.approx(2 / 3)
    assert pooled["p_baseline"] == pytest.approx(5 / 8)
    assert pooled["ratio"] == pytest.approx(16 / 15)
    assert np.isnan(r["p_given_harm"][0, 0])


def test_retaliation__no_provocation_is_undefined_not_zero():
    harm = np.zeros((6, 2, 2))
    harm[1, 1, 0] = 1.0
    r = retaliation(harm, np.zeros(6, bool), window=2)
    assert np.isnan(r["p_given_harm"][0, 1]) and r["p_given_harm"][1, 0] == 0.0
    with pytest.raises(ValueError):
        retaliation(harm, np.zeros(6, bool), window=0)


@st.composite
def _events(draw):
    t, e, a = draw(st.integers(2, 12)), draw(st.integers(1, 3)), draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    harm = (rng.random((t, e, a, a)) < draw(st.floats(0.0, 0.8))).astype(np.float32)
    reset = rng.random((t, e)) < 0.2
    return harm, reset, rng.permutation(a), draw(st.integers(1, 4))


@settings(max_examples=40, deadline=None)
@given(_events())
def test_retaliation__relabelling_agents_permutes_matrices_and_keeps_pooled(case):
    harm, reset, perm, window = case
    r = retaliation(harm, reset, window)
    relabelled = retaliation(harm[:, :, perm][:, :, :, perm], reset, window)
    for k in ("n_provocations", "n_retaliations", "p_given_harm", "p_baseline"):
        np.testing.assert_array_equal(relabelled[k], r[k][np.ix_(perm, perm)])
    assert relabelled["pooled"] == pytest.approx(r["pooled"], nan_ok=True)
    for k in ("p_given_harm", "p_baseline"):
        p = r[k][~np.isnan(r[k])]
        assert np.all((p >= 0) & (p <= 1))
    rates = pair_rates(harm)
    assert np.all((rates[~np.isnan(rates)] >= 0) & (rates[~np.isnan(rates)] <= 1))


@settings(max_examples=30, deadline=None)
@given(_events())
def test_retaliation__environments_are_independent_so_counts_add(case):
    harm, reset, _, window = case
    both = retaliation(harm, reset, window)
    parts = [
        retaliation(harm[:, e : e + 1], reset[:, e : e + 1], window)
        for e in range(harm.shape[1])
    ]
    for k in ("n_provocations", "n_retaliations", "n_windows", "n_windows_with_harm"):
        np.testing.assert_array_equal(both[k], sum(p[k] for p in parts))


def test_resonance__within_episode_correlation_hand_computed():
    # pain series only (harm, help constant: undefined, left out of the score).
    # episode 1: x = [0, 2], y = [0, 2]; episode 2: x = [0, 1, 2], y = [0, 0, 3].
    # centred: dots 2 + 3 = 5, sum x² = 2 + 2, sum y² = 2 + 6 -> r = 5 / sqrt(32)
    reset = np.array([1, 0, 1, 0, 0], bool)
    pain = np.zeros((5, 4))
    pain[:, 0] = [0, 2, 0, 1, 2]
    pain[:, 3] = [0, 2, 0, 0, 3]
    zeros = np.zeros((5, 4, 4))
    r = resonance(zeros, zeros, pain, reset, ((0, 1), (2, 3)), jax.random.key(0), 50)
    assert r["per_series"]["pain"] == pytest.approx(5 / math.sqrt(32))
    assert r["per_series"]["harm"] is None and r["per_series"]["help"] is None
    assert r["score"] == pytest.approx(5 / math.sqrt(32))
    # episode means differ by 10 in opposite directions: centring removes them
    pain[2:, 0] += 10.0
    shifted = resonance(
        zeros, zeros, pain, reset, ((0, 1), (2, 3)), jax.random.key(0), 50
    )
    assert shifted["score"] == pytest.approx(r["score"])


def _world(seed, t=120, e=4, mirrored=True):
    rng = np.random.default_rng(seed)
    harm = (rng.random((t, e, 4, 4)) < 0.2).astype(np.float32)
    help_ = (rng.random((t, e, 4, 4)) < 0.2).astype(np.float32)
    pain = rng.exponential(size=(t, e, 4)).astype(np.float32)
    if mirrored:  # C-D live exactly what A-B live
        harm[:, :, 2:, 2:], help_[:, :, 2:, 2:] = harm[:, :, :2, :2], help_[:, :, :2, :2]
        pain[..., 2:] = pain[..., :2]
    reset = np.zeros((t, e), bool)
    reset[::30] = True
    return harm, help_, pain, reset


def test_resonance__mirrored_pairs_score_one_far_above_control():
    r = resonance(*_world(0), key=jax.random.key(1), num_shuffles=100)
    assert r["score"] == pytest.approx(1.0)
    assert abs(r["control_mean"]) < 0.1 and r["z"] > 10
    assert r["p_value"] == pytest.approx(1 / 101)


def test_resonance__independent_pairs_near_zero_and_near_control():
    r = resonance(*_world(0, mirrored=False), key=jax.random.key(1), num_shuffles=100)
    assert abs(r["score"]) < 0.1 and abs(r["score"] - r["control_mean"]) < 0.1
    assert abs(r["z"]) < 3.5 and r["p_value"] > 0.001


def test_resonance__deterministic_under_key():
    world = _world(2, mirrored=False)
    a = resonance(*world, key=jax.random.key(5), num_shuffles=40)
    assert a == resonance(*world, key=jax.random.key(5), num_shuffles=40)
    assert a["control_mean"] != resonance(*world, key=jax.random.key(6))["control_mean"]


def test_empathy_report__json_ready_summary():
    harm, help_, pain, reset = _world(3)
    report = empathy_report(harm, help_, pain, reset, window=3, key=jax.random.key(0))
    text = json.dumps(report, allow_nan=False)  # strict JSON: undefined values are null
    assert json.loads(text) == report
    assert report["num_agents"] == 4 and report["num_envs"] == 4
    assert report["num_episodes"] == 16
    assert report["resonance"]["pairs"] == [[0, 1], [2, 3]]
    assert report["resonance"]["score"] == pytest.approx(1.0)
    rate = report["harm_rate"]
    assert rate["matrix"][1][1] is None
    assert rate["mean"] == pytest.approx(
        np.mean(pair_rates(harm)[~np.eye(4, dtype=bool)])
    )
    r = retaliation(harm, reset, 3)
    assert report["retaliation"]["pooled"] == pytest.approx(r["pooled"])


def test_empathy_report__two_agents_without_env_axis():
    report = empathy_report(HARM, HELP, PAIN, RESET, window=2)
    assert report["resonance"] is None and report["num_envs"] == 1
    assert report["num_episodes"] == 2
    assert report["help_rate"]["mean"] == pytest.approx(1 / 16)
    assert report["pain"]["in_pain_rate"] == [0.25, 0.0]
    assert report["retaliation"]["p_given_harm"][0][1] == pytest.approx(0.5)
