"""The demo and the Coin Game league reproduction: aggregation by hand, bad input
rejected before any compute, and (slow) both commands end to end on tiny settings."""

import json

import numpy as np
import pytest

from pain_jax import cli
from pain_jax.experiments import coin, demo


def _row(pairing, seed, r0, r1, own):
    return {
        "pairing": pairing,
        "seed": seed,
        "return0": r0,
        "return1": r1,
        "own_coin_rate": own,
        "own_coin0": own,
        "pain0": 0.0,
        "pain1": 0.0,
    }


def test_coin_aggregate__mean_and_std_over_seeds_per_pairing():
    rows = []
    for pairing in ("self-play",) + coin.BOTS:
        rows += [_row(pairing, 0, 0.1, 0.3, 0.5), _row(pairing, 1, 0.3, 0.1, 1.0)]
    rows[-1]["own_coin_rate"] = float("nan")  # no pickups in one game: skipped
    agg = coin.aggregate(rows)
    assert agg["self-play"]["return0"] == pytest.approx((0.2, 0.1))
    assert agg["self-play"]["own_coin_rate"] == pytest.approx((0.75, 0.25))
    assert agg["random"]["own_coin_rate"] == pytest.approx((0.5, 0.0))
    md = coin.league_table({"aa_off": agg, "ppo_off": agg})
    # the published figure sits beside the AA rows only
    aa_self = next(line for line in md.splitlines() if "aa_off | self-play" in line)
    ppo_self = next(line for line in md.splitlines() if "ppo_off | self-play" in line)
    assert "+0.28 / +0.28" in aa_self and "+0.28" not in ppo_self
    assert "+0.200 ± 0.100" in aa_self


@pytest.mark.parametrize(
    "argv, message",
    [
        (["reproduce", "coin", "--pain", "off,agony"], "unknown pain mode 'agony'"),
        (["reproduce", "coin", "--seeds", "0"], "--seeds and --league-envs"),
        (["reproduce", "coin", "--algorithms", "lola"], "TrainConfig.algorithm"),
        (["demo", "--updates", "0"], "TrainConfig.num_updates"),
        (["demo", "--seeds", "0"], "--seeds and --league-envs"),
        (["experiment", "empathy", "--preset", "big"], "unknown preset 'big'"),
        (["experiment", "empathy", "--conditions", "numb"], "--conditions: unknown"),
        (["experiment", "empathy", "--seeds", "0"], "--seeds must be >= 1"),
    ],
)
def test_cli__bad_experiment_options_exit_2_before_compute(
    argv, message, capsys, tmp_path
):
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def test_demo_config__agents_learn_differently_with_pain_on():
    assert demo.DEMO_CONFIG.agent_algorithms == ("aa", "ppo")
    assert demo.DEMO_CONFIG.pain_mode != "off"


@pytest.mark.slow
def test_demo__end_to_end_tiny(tmp_path):
    out = tmp_path / "demo"
    argv = ["--out", str(out), "--updates", "2", "--envs", "8", "--seeds", "2"]
    assert demo.main([*argv, "--league-envs", "8", "--no-progress"]) == 0
    record = json.loads((out / "league.json").read_text())
    pairings = [(r["seat0"], r["seat1"]) for r in record["league"]]
    assert pairings[0] == ("AA", "PPO") and len(pairings) == 7
    for name in ("demo.md", "league.png", "train/training.png", "train/summary.md"):
        assert (out / name).is_file(), name
    # rerunning the same command resumes (nothing left to train) and succeeds
    assert demo.main([*argv, "--league-envs", "8", "--no-progress"]) == 0


@pytest.mark.slow
def test_reproduce_coin__end_to_end_tiny(tmp_path):
    out = tmp_path / "coin"
    argv = ["reproduce", "coin", "--out", str(out), "--updates", "2", "--envs", "8"]
    argv += ["--seeds", "2", "--pain", "off,noise", "--league-envs", "8", "--no-progress"]
    assert cli.main(argv) == 0
    record = json.loads((out / "coin_league.json").read_text())
    assert set(record["league"]) == {"aa_off", "aa_noise", "ppo_off", "ppo_noise"}
    assert len(record["rows"]) == 4 * 2 * (1 + len(coin.BOTS))
    returns = np.array([r["return0"] for r in record["rows"]])
    assert np.all(np.isfinite(returns)) and np.all(np.abs(returns) <= 2.0)


@pytest.mark.slow
def test_experiment_empathy__end_to_end_tiny(tmp_path):
    out = tmp_path / "empathy"
    argv = ["experiment", "empathy", "--out", str(out), "--updates", "1", "--seeds", "1"]
    argv += [
        "--algorithms",
        "ppo",
        "--regimes",
        "mixed",
        "--conditions",
        "off,felt_visible",
    ]
    assert cli.main(argv) == 0
    record = json.loads((out / "empathy.json").read_text())
    assert [r["run"] for r in record["rows"]] == [
        "ppo/mixed/off",
        "ppo/mixed/felt_visible",
    ]
    for row in record["rows"]:
        assert 0.0 <= row["harm_rate"] <= 1.0 and 0.0 <= row["help_rate"] <= 1.0
    assert (out / "empathy.png").is_file() and (out / "empathy.md").is_file()


def test_fresh_stem__never_overwrites_recorded_results(tmp_path):
    from pain_jax.experiments.report import fresh_stem

    stem = tmp_path / "bench_2026-12-03_cpu-2core"
    assert fresh_stem(stem) == stem
    stem.with_suffix(".md").write_text("recorded")
    other = fresh_stem(stem)
    assert other != stem and other.name.startswith(stem.name + "_")
    assert not other.with_suffix(".md").exists()
