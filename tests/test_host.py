"""The host loop: resume after interruption, config guards, NaN stop, outputs."""

import json

import jax
import numpy as np
import pytest

from pain_jax.experiments import train as train_cli
from pain_jax.learn import host
from pain_jax.learn.config import TrainConfig

TINY = train_cli.PRESETS["tiny"]


def _leaves(tree):
    tree = jax.tree.map(
        lambda x: (
            jax.random.key_data(x)
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
            else x
        ),
        tree,
    )
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    summary = host.train_run(TINY, out, num_seeds=2, chunk=2, progress=False)
    return out, summary


def test_host__resume_after_interruption_is_bit_identical(uninterrupted, tmp_path):
    full_out, full = uninterrupted
    stopped = host.train_run(
        TINY, tmp_path, num_seeds=2, chunk=2, progress=False, stop_after=2
    )
    assert stopped == {"stopped_at": 2}
    resumed = host.train_run(TINY, tmp_path, num_seeds=2, chunk=2, progress=False)
    for a, b in zip(_leaves(full["runner"]), _leaves(resumed["runner"]), strict=True):
        np.testing.assert_array_equal(a, b)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["update"] for x in lines] == [1, 2, 3, 4]
    assert lines == (full_out / "metrics.jsonl").read_text().splitlines()


def test_host__writes_summary_table_and_plot(uninterrupted):
    out, summary = uninterrupted
    for name in ("summary.json", "summary.md", "training.png", "config.json"):
        assert (out / name).stat().st_size > 0
    assert summary["updates"] == TINY.num_updates
    assert len(summary["final"]["reward_per_step"]["mean"]) == 2  # per agent


def test_host__other_config_in_same_folder_is_refused(uninterrupted):
    out, _ = uninterrupted
    with pytest.raises(ValueError, match="different configuration"):
        host.train_run(TINY.replace(lr=1e-3), out, num_seeds=2, chunk=2, progress=False)


def test_host__nan_loss_stops_with_update_and_checkpoint_named(
    uninterrupted, tmp_path, monkeypatch
):
    trainer, init, runs = host._compiled(TINY)
    compiled = runs[2]  # reuse the chunk the fixture compiled

    def poisoned(runner):
        new, metrics = compiled(runner)
        metrics["loss"] = metrics["loss"].at[:, 1].set(np.nan)
        return new, metrics

    monkeypatch.setitem(runs, 2, poisoned)
    with pytest.raises(
        host.TrainingDiverged, match="update 2; last good checkpoint: none"
    ):
        host.train_run(TINY, tmp_path, num_seeds=2, chunk=2, progress=False)


def test_train_cli__invalid_config_names_the_field(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(
            [
                "--preset",
                "tiny",
                "--config.num-minibatches",
                "3",
                "--host.out",
                str(tmp_path),
            ]
        )
    assert exit_info.value.code == 2
    assert "TrainConfig.num_minibatches" in capsys.readouterr().err


def test_train_cli__unknown_preset_lists_presets(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(["--preset", "nope"])
    assert exit_info.value.code == 2
    assert "available: " in capsys.readouterr().err


def test_config__rejects_bad_values_before_compute():
    with pytest.raises(ValueError, match="TrainConfig.gamma"):
        TrainConfig(gamma=1.5)
