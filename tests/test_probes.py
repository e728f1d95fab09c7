"""Theory-of-mind probes: a known linear signal is decoded, no signal is not, shuffled
controls sit at chance, group splits never leak, masks restrict, keys determine all."""

import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pain_jax.analysis.probes import (
    balanced_accuracy,
    fit_sgd,
    probe_report,
    probe_report_by,
    r2_score,
    split_by,
    split_indices,
)

N, D = 640, 8  # 480 training rows: padding bucket 512
KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    noise = rng.normal(size=(N, D)).astype(np.float32)  # baseline: no signal
    w = rng.normal(size=D)
    groups = np.repeat(np.arange(N // 32), 32)  # 20 "episodes" of 40 steps
    return {"x": x, "noise": noise, "w": w, "groups": groups, "rng": rng}


def test_scores__hand_computed():
    assert r2_score([1, 2, 3], [1, 2, 3]) == 1.0
    assert r2_score([1, 2, 3], [2, 2, 2]) == 0.0  # the mean predictor
    assert math.isnan(r2_score([1, 1], [0, 1]))
    # recalls 1/1 and 1/3 -> 2/3, while plain accuracy is 2/4
    assert balanced_accuracy([0, 1, 1, 1], [0, 1, 0, 0]) == pytest.approx(2 / 3)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 300), st.integers(1, 40), st.floats(0.05, 0.9), st.integers(0, 99))
def test_split_indices__groups_held_out_whole(n, n_groups, frac, seed):
    groups = np.random.default_rng(seed).integers(0, n_groups, n) * 7 + 3
    if len(np.unique(groups)) < 2:
        with pytest.raises(ValueError):
            split_indices(jax.random.key(seed), n, frac, groups)
        return
    tr, te = split_indices(jax.random.key(seed), n, frac, groups)
    assert not set(groups[tr]) & set(groups[te])
    assert len(tr) and len(te) and sorted(np.r_[tr, te]) == list(range(n))
    # adding the last held-out group overshot test_frac at most by that group's size
    assert len(te) >= min(frac * n, n - np.bincount(groups).max())


def test_probe_report__linear_signal_regression(data):
    x = data["x"]
    y = x @ data["w"] + 0.05 * data["rng"].normal(size=N)
    rep = probe_report({"hidden": x, "baseline": data["noise"]}, y, "regression", KEY)
    assert rep["reason"] is None and rep["chance"] == {"r2": 0.0}
    assert rep["n_train"] + rep["n_test"] == N
    hid, base = rep["results"]["hidden"], rep["results"]["baseline"]
    assert hid["linear"]["r2"] > 0.99 and hid["mlp"]["r2"] > 0.8
    for probe in ("linear", "mlp"):
        assert hid[probe]["r2_shuffled"] < 0.05  # near or below 0
        assert base[probe]["r2"] < 0.05 and base[probe]["r2_shuffled"] < 0.05


def test_probe_report__no_signal_regression(data):
    y = data["rng"].normal(size=N)
    rep = probe_report({"hidden": data["x"]}, y, "regression", KEY, groups=data["groups"])
    for probe in ("linear", "mlp"):
        assert rep["results"]["hidden"][probe]["r2"] < 0.05


def test_probe_report__separable_classes_and_chance_controls(data):
    x = data["x"]
    y = x @ data["w"] > 0
    rep = probe_report({"hidden": x, "baseline": data["noise"]}, y, "classification", KEY)
    hid, base = rep["results"]["hidden"], rep["results"]["baseline"]
    assert hid["linear"]["accuracy"] > 0.95 and hid["mlp"]["accuracy"] > 0.9
    te_rate = rep["chance"]["accuracy"]
    assert 0.4 < te_rate < 0.65 and rep["chance"]["balanced_accuracy"] == 0.5
    for probe in ("linear", "mlp"):
        assert abs(hid[probe]["balanced_accuracy_shuffled"] - 0.5) < 0.12
        assert abs(base[probe]["balanced_accuracy"] - 0.5) < 0.12


def test_probe_report__rare_event_needs_balanced_accuracy(data):
    x = data["x"]
    score = x @ data["w"]
    y = score > np.quantile(score, 0.9)  # 10% positives
    rep = probe_report({"hidden": x}, y, "classification", KEY, probes=("linear",))
    assert rep["chance"]["accuracy"] > 0.8  # always "no" is already 80-95% accurate
    assert rep["results"]["hidden"]["linear"]["balanced_accuracy"] > 0.85


def test_probe_report__multiclass_signal_and_no_signal(data):
    # linear probe only: the MLP's multi-class path is the binary one with K outputs,
    # and each extra K costs a compilation
    x = data["x"]
    w3 = data["rng"].normal(size=(D, 3))
    kw = {"kind": "classification", "key": KEY, "num_classes": 3, "probes": ("linear",)}
    rep = probe_report({"hidden": x}, np.argmax(x @ w3, axis=1), **kw)
    assert rep["chance"]["balanced_accuracy"] == pytest.approx(1 / 3)
    assert rep["results"]["hidden"]["linear"]["accuracy"] > 0.85
    noise = probe_report({"hidden": x}, data["rng"].integers(0, 3, N), **kw)
    assert abs(noise["results"]["hidden"]["linear"]["balanced_accuracy"] - 1 / 3) < 0.1


def test_probe_report__mask_equals_report_on_the_subset(data):
    x, groups = data["x"], data["groups"]
    y = x @ data["w"]
    mask = x[:, 0] > 0
    kw = {"kind": "regression", "key": KEY, "probes": ("linear",)}
    masked = probe_report({"h": x}, y, mask=mask, groups=groups, **kw)
    direct = probe_report({"h": x[mask]}, y[mask], groups=groups[mask], **kw)
    assert masked == direct and masked["n"] == mask.sum()
    by = probe_report_by({"h": x}, y, split_by(mask, ("pos", "neg")), groups=groups, **kw)
    assert by["pos"] == masked and by["neg"]["n"] == N - mask.sum()


def test_probe_report__deterministic_under_key(data):
    x = data["x"]
    y = (x @ data["w"] > 0.5).astype(int)
    kw = {"kind": "classification", "groups": data["groups"]}
    first = probe_report({"h": x}, y, key=jax.random.key(3), **kw)
    assert first == probe_report({"h": x}, y, key=jax.random.key(3), **kw)
    other = probe_report({"h": x}, y, key=jax.random.key(4), **kw)
    assert other["results"] != first["results"]


def test_fit_sgd__one_compilation_serves_sizes_in_a_bucket(data):
    x = data["x"]
    y = x @ data["w"] > 0
    probe_report({"h": x[:600]}, y[:600], "classification", KEY, probes=("linear",))
    size = fit_sgd._cache_size()
    probe_report({"h": x[:560]}, y[:560], "classification", KEY, probes=("linear",))
    assert fit_sgd._cache_size() == size  # 450 and 420 train rows share bucket 512


@pytest.mark.parametrize(
    ("kind", "y", "reason"),
    [
        ("regression", np.ones(N), "constant target"),
        ("classification", np.zeros(N, int), "single class"),
    ],
)
def test_probe_report__degenerate_targets_give_nan_and_reason(data, kind, y, reason):
    rep = probe_report({"h": data["x"]}, y, kind, KEY)
    assert reason in rep["reason"]
    scores = rep["results"]["h"]["linear"]
    assert scores and all(math.isnan(v) for v in scores.values())


def test_probe_report__too_few_samples_or_one_group(data):
    x, y = data["x"], data["x"][:, 0]
    few = probe_report({"h": x}, y, "regression", KEY, mask=np.arange(N) < 5)
    assert "too few" in few["reason"]
    one = probe_report({"h": x}, y, "regression", KEY, groups=np.zeros(N, int))
    assert "2 groups" in one["reason"]
    with pytest.raises(ValueError):
        probe_report({"h": x[:10]}, y, "regression", KEY)


def test_probe_report__bad_arguments_raise_and_fixed_ridge_strength(data):
    x, y = data["x"], data["x"] @ data["w"]
    with pytest.raises(ValueError, match="unknown probes"):
        probe_report({"h": x}, y, "regression", KEY, probes=("svm",))
    with pytest.raises(ValueError, match="integers"):
        probe_report({"h": x}, y, "classification", KEY)
    fixed = probe_report(
        {"h": x}, y, "regression", KEY, probes=("linear",), ridge_alphas=(3.0,)
    )
    # a strong fixed penalty (3 x n) shrinks the fit: R² well below the tuned one
    assert fixed["results"]["h"]["linear"]["alpha"] == 3.0
    assert 0.0 < fixed["results"]["h"]["linear"]["r2"] < 0.5
