"""Smoke test of ``benchmarks/train_throughput.py``: the default grid of timed groups,
the updates per call and the time shares by hand, and one tiny run end to end (one
group on the sampled IPD, pain off and noise sharing its compiles) whose rows carry
the measured times, throughputs that match them, shares that add up, and the written
JSON and markdown.  No timing is asserted."""

import json
import math
import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "train_throughput.py"

TINY = [
    "--algorithms", "ppo",
    "--env", "ipd",
    "--batch-sizes", "8",
    "--all-algorithms-at",
    "--extra-pain", "noise",
    "--extra-envs",
    "--extra-batch", "8",
    "--hidden", "8",
    "--pain-layers", "none",
    "--num-steps", "4",
    "--num-epochs", "1",
    "--num-minibatches", "2",
    "--steps-per-call", "64",
    "--repeats", "2",
    "--device-note", "test box",
]  # fmt: skip


@pytest.fixture(scope="module")
def bench():
    return runpy.run_path(str(BENCH), run_name="bench_train_throughput")


@pytest.fixture(scope="module")
def tiny(bench, tmp_path_factory):
    """``(result, out_dir)`` of one tiny run writing to a temporary folder."""
    out = tmp_path_factory.mktemp("results")
    return bench["main"]([*TINY, "--out", str(out)]), out


def _groups(bench, argv):
    return [
        (cfg.env, cfg.num_envs, cfg.network, variants)
        for cfg, variants in bench["groups"](bench["build_parser"]().parse_args(argv))
    ]


def test_groups__default_grid(bench):
    # ppo at every batch size, every algorithm at 1024, pain noise sharing the 1024
    # group, the IPD row in its own group.
    all_algs = [("ppo", "off"), ("aa", "off"), ("aa_pg", "off"), ("ppo", "noise")]
    assert _groups(bench, []) == [
        ("coin_game", 64, "mlp", [("ppo", "off")]),
        ("coin_game", 256, "mlp", [("ppo", "off")]),
        ("coin_game", 1024, "mlp", all_algs),
        ("coin_game", 4096, "mlp", [("ppo", "off")]),
        ("ipd", 1024, "mlp", [("ppo", "off")]),
    ]


def test_groups__cnn_falls_back_to_mlp_on_flat_observations(bench):
    argv = ["--network", "cnn", "--batch-sizes", "64", "--all-algorithms-at"]
    assert _groups(bench, argv) == [
        ("coin_game", 64, "cnn", [("ppo", "off")]),
        ("coin_game", 1024, "cnn", [("ppo", "noise")]),
        ("ipd", 1024, "mlp", [("ppo", "off")]),
    ]


def test_updates_per_call__rounds_to_steps_per_call_at_least_one(bench):
    per_call = bench["updates_per_call"]
    assert per_call(64, 50, 51200) == 16  # 51200 / 3200
    assert per_call(256, 50, 51200) == 4
    assert per_call(4096, 50, 51200) == 1  # 0.25 rounds to 0, floored at 1
    assert per_call(8, 4, 64) == 2


def test_shares__hand_computed(bench):
    # env alone 1 s, rollout 3 s, update 4 s: env 1/4, acting 2/4, learning 1/4.
    assert bench["shares"](1.0, 3.0, 4.0) == {
        "env": 0.25,
        "acting": 0.5,
        "learning": 0.25,
    }


def test_main__one_row_per_variant(tiny):
    result, _ = tiny
    rows = result["rows"]
    assert [(r["algorithm"], r["env"], r["pain_mode"]) for r in rows] == [
        ("ppo", "ipd", "off"),
        ("ppo", "ipd", "noise"),
    ]
    for r in rows:
        assert (r["num_envs"], r["num_steps"], r["updates_per_call"]) == (8, 4, 2)
        assert r["env_steps_per_call"] == 64
        assert (r["network"], r["hidden"], r["pain_layers"]) == ("mlp", [8], "none")
    # the pain variants share the group's compiled functions
    assert rows[0]["compile_s"] == rows[1]["compile_s"]


def test_main__throughput_is_steps_over_measured_time(tiny):
    for r in tiny[0]["rows"]:
        for part in ("update", "rollout", "env_only"):
            stats = r[part]
            assert len(stats["times_s"]) == 2
            assert 0 < stats["min_s"] <= stats["median_s"]
            assert stats["steps_per_s_min_time"] == pytest.approx(64 / stats["min_s"])
            assert stats["steps_per_s_median_time"] == pytest.approx(
                64 / stats["median_s"]
            )
        assert all(t > 0 for t in r["compile_s"].values())


def test_main__shares_add_up_and_come_from_min_times(tiny):
    for r in tiny[0]["rows"]:
        a, b, c = (r[p]["min_s"] for p in ("env_only", "rollout", "update"))
        s = r["shares"]
        assert math.isclose(sum(s.values()), 1.0, rel_tol=1e-12)
        assert s["env"] == pytest.approx(a / c)
        assert s["acting"] == pytest.approx((b - a) / c)
        assert s["learning"] == pytest.approx((c - b) / c)


def test_main__writes_dated_json_and_markdown(tiny):
    result, out = tiny
    meta = result["meta"]
    stem = out / f"train_throughput_{meta['date']}_{meta['hardware']}"
    assert json.loads(stem.with_suffix(".json").read_text()) == result
    md = stem.with_suffix(".md").read_text()
    assert "test box" in md and meta["device"] == "test box"
    assert md.count("| ppo | ipd |") == 2
    assert "| ppo | ipd | noise | mlp | 8 | 2 |" in md
    assert len(meta["load_avg_before"]) == len(meta["load_avg_after"]) == 3
    assert meta["notes"] in md
