"""The ``pain-jax`` command line and the demo's building blocks."""

import jax
import numpy as np
import pytest

from pain_jax import cli
from pain_jax.experiments.games import strategy_league


def test_cli__help_lists_subcommands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "train", "reproduce", "bench"):
        assert command in out


def test_cli__unknown_command_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])
    err = capsys.readouterr().err
    assert "available: demo, train, evaluate, reproduce, experiment, bench" in err


def test_cli__unknown_benchmark_lists_available(capsys):
    assert cli.main(["bench", "no_such_benchmark"]) == 2
    assert "unknown benchmark 'no_such_benchmark'" in capsys.readouterr().out


def test_demo__sampled_league_agrees_with_exact_values():
    league = strategy_league(jax.random.key(1), "ipd", num_envs=256, num_steps=250)
    gap = np.abs(league["sampled"] - league["exact"])
    # truncation at 250 steps costs < 0.96**250 * 3 ~ 1e-4; the rest is sampling noise
    assert np.all(gap <= 5 * league["sampled_sem"] + 2e-3), gap.max()
    # tit-for-tat vs always-defect: exploited once, then mutual defection
    i, j = (
        league["strategies"].index("tit_for_tat"),
        league["strategies"].index("always_defect"),
    )
    np.testing.assert_allclose(league["exact"][i, j], [-2.04, -1.92], atol=1e-5)


def test_cli__bench_returning_results_exits_zero(tmp_path, monkeypatch):
    (tmp_path / "tiny_bench.py").write_text(
        "def main(argv=None):\n    return {'steps_per_second': 1.0, 'argv': argv}\n"
    )
    monkeypatch.setattr(cli, "BENCHMARKS_DIR", tmp_path)
    assert cli.main(["bench", "tiny_bench", "--quick"]) == 0


def test_make__non_integer_episode_length_is_rejected():
    import pain_jax as pj

    with pytest.raises(ValueError, match="max_steps must be >= 1 and an integer"):
        pj.make("ipd", max_steps=2.5)
    pj.make("ipd", max_steps=3.0)  # an integral float is fine


def test_train_cli__env_options_from_key_value_flags(capsys):
    from pain_jax.experiments.train import _env_options_from_argv, main

    options, rest = _env_options_from_argv(
        [
            "--env-option",
            "num_agents=4",
            "--env-option=walls=[[1, 2]]",
            "--x",
            "y",
            "--env-option",
            "name=abc",
        ]
    )
    assert options == {"num_agents": 4, "walls": [[1, 2]], "name": "abc"}
    assert rest == ["--x", "y"]
    with pytest.raises(SystemExit) as e:
        main(["--env-option", "num_agents"])
    assert e.value.code == 2 and "KEY=VALUE" in capsys.readouterr().err
    # an option the environment does not have is named before any compute
    code = main(["--preset", "tiny", "--env-option", "no_such_option=1"])
    assert code == 2 and "no_such_option" in capsys.readouterr().err
