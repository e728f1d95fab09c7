"""The host loop around a pure ``Trainer``: seeds, chunks, progress, metrics,
checkpoints, resume and NaN guards.

The jitted work is ``Trainer.run`` vmapped over seeds; the host calls it in chunks of
``chunk`` updates so that it can show progress, append metrics to
``metrics.jsonl``, and save an orbax checkpoint after every chunk.  Because every
update is a pure function of the runner state (the PRNG key lives in it), a run
that is killed and started again with the same command resumes from its last
checkpoint and ends bit-identical to an uninterrupted run.

Output folder layout::

    config.json     the TrainConfig and host options (a rerun must match it)
    metrics.jsonl   one line per update: every metric, one value per seed
    checkpoints/    orbax checkpoints of the runner state, named by update
    summary.json / summary.md / training.png   written when the run completes
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pain_jax.experiments.report import environment_info, markdown_table, write_json
from pain_jax.learn.config import TrainConfig
from pain_jax.learn.train import env_steps, make_trainer


class TrainingDiverged(RuntimeError):
    """A loss became NaN/inf; the message names the update and the last good
    checkpoint."""


def _config_record(config: TrainConfig, num_seeds: int, seed: int) -> dict[str, Any]:
    return {
        "config": json.loads(json.dumps(dataclasses.asdict(config), default=list)),
        "num_seeds": num_seeds,
        "seed": seed,
    }


def _flat_arrays(tree) -> dict[str, jax.Array]:
    """``{path: array}`` of the non-empty leaves, typed PRNG keys as raw uint32 data
    (orbax stores plain, non-empty arrays; an MLP's empty recurrent carry is
    rebuilt from the template on restore)."""
    flat = {}
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        if x.size:
            flat[jax.tree_util.keystr(path)] = x
    return flat


def _unflatten_arrays(flat: dict[str, jax.Array], like):
    def back(path, ref):
        name = jax.tree_util.keystr(path)
        if name not in flat:  # empty leaf
            return ref
        x = flat[name]
        if jax.dtypes.issubdtype(ref.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref))
        return x

    return jax.tree_util.tree_map_with_path(back, like)


class Checkpoints:
    """Orbax checkpoints of a runner-state pytree, keyed by update number."""

    def __init__(self, directory: Path, keep: int = 2):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.manager = ocp.CheckpointManager(
            directory.resolve(), options=ocp.CheckpointManagerOptions(max_to_keep=keep)
        )

    def latest(self) -> int | None:
        return self.manager.latest_step()

    def save(self, update: int, runner) -> None:
        self.manager.save(update, args=self._ocp.args.StandardSave(_flat_arrays(runner)))
        self.manager.wait_until_finished()

    def restore(self, update: int, like):
        abstract = {
            k: jax.ShapeDtypeStruct(x.shape, x.dtype)
            for k, x in _flat_arrays(like).items()
        }
        data = self.manager.restore(update, args=self._ocp.args.StandardRestore(abstract))
        return _unflatten_arrays(data, like)

    def close(self) -> None:
        self.manager.close()


def _rows(metrics: dict[str, np.ndarray], first_update: int) -> list[dict]:
    """Chunk metrics ``(seeds, chunk, ...)`` -> one JSON-able dict per update."""
    n = next(iter(metrics.values())).shape[1]
    rows = []
    for i in range(n):
        row = {"update": first_update + i + 1}
        for name, value in metrics.items():
            if name == "update":
                continue
            row[name] = value[:, i].tolist()
        rows.append(row)
    return rows


def _read_metrics(path: Path, up_to: int) -> list[dict]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["update"] <= up_to]


def _scalar(row: dict, name: str) -> float:
    value = np.asarray(row.get(name, np.nan), np.float64)
    return float(np.nanmean(value)) if np.isfinite(value).any() else math.nan


def train_run(
    config: TrainConfig,
    out: Path,
    num_seeds: int = 1,
    seed: int = 0,
    chunk: int = 10,
    progress: bool = True,
    overwrite: bool = False,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train ``num_seeds`` seeds of ``config`` into the folder ``out`` (resumable).

    ``stop_after`` stops (as if killed) once that many updates are saved; used to
    test resumption.  Returns the summary dict (also written to ``summary.json``).
    """
    if num_seeds < 1 or chunk < 1:
        raise ValueError(f"num_seeds and chunk must be >= 1, got {num_seeds}, {chunk}")
    trainer, init, run_chunk = _compiled(config)  # validates before any compute
    out = Path(out)
    record = _config_record(config, num_seeds, seed)
    cfg_path = out / "config.json"
    if cfg_path.exists() and not overwrite:
        old = json.loads(cfg_path.read_text())
        if old != record:
            raise ValueError(
                f"{out} holds a run with a different configuration; choose another "
                "--out or pass --host.overwrite"
            )
    elif overwrite and out.exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(json.dumps(record, indent=2) + "\n")

    keys = jax.random.split(jax.random.key(seed), num_seeds)
    runner = init(keys)
    ckpt = Checkpoints(out / "checkpoints")
    done = ckpt.latest() or 0
    if done:
        runner = ckpt.restore(done, runner)
    metrics_path = out / "metrics.jsonl"
    rows = _read_metrics(metrics_path, done)
    metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    total = config.num_updates
    bar = _progress(total, done, progress, config)
    start = time.perf_counter()
    try:
        while done < total:
            n = min(chunk, total - done)
            if n not in run_chunk:  # the last chunk may be shorter
                run_chunk[n] = jax.jit(jax.vmap(lambda r, n=n: trainer.run(r, n)))
            new_runner, metrics = run_chunk[n](runner)
            metrics = jax.tree.map(np.asarray, metrics)
            bad = ~np.isfinite(metrics["loss"]).all(axis=(0, 2))
            if bad.any():
                first = done + int(np.argmax(bad)) + 1
                last = ckpt.latest()
                raise TrainingDiverged(
                    f"non-finite loss at update {first}; last good checkpoint: "
                    + (f"update {last} in {out / 'checkpoints'}" if last else "none")
                )
            runner = new_runner
            new_rows = _rows(metrics, done)
            with metrics_path.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in new_rows)
            rows += new_rows
            done += n
            ckpt.save(done, runner)
            _tick(bar, n, new_rows[-1], config, start, done)
            if stop_after is not None and done >= stop_after and done < total:
                return {"stopped_at": done}
    finally:
        if bar is not None:
            bar.close()
        ckpt.close()
    with warnings.catch_warnings():  # NaN-only columns (no episode finished yet)
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = summarise(config, rows, num_seeds, time.perf_counter() - start)
        write_outputs(out, summary, rows)
    summary["runner"] = runner
    return summary


_COMPILED: dict[str, tuple] = {}


def _compiled(config: TrainConfig):
    """``(trainer, jitted vmapped init, {chunk length: jitted vmapped run})`` for a
    config, built once per process so that repeated runs (resume, notebooks, tests)
    reuse the compiled code."""
    name = json.dumps(dataclasses.asdict(config), sort_keys=True, default=list)
    if name not in _COMPILED:
        trainer = make_trainer(config)
        _COMPILED[name] = (trainer, jax.jit(jax.vmap(trainer.init)), {})
    return _COMPILED[name]


def _progress(total: int, done: int, enabled: bool, config: TrainConfig):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=done, unit="update", desc=f"{config.label} {config.env}"
    )


def _tick(bar, n: int, row: dict, config: TrainConfig, start: float, done: int) -> None:
    if bar is None:
        return
    bar.update(n)
    sps = env_steps(config, done) / max(time.perf_counter() - start, 1e-9)
    postfix = {
        "steps/s": f"{sps:,.0f}",
        "reward/step": f"{_scalar(row, 'reward_per_step'):.3f}",
        "pain": f"{_scalar(row, 'pain'):.2f}",
    }
    if "episode/own_coin_rate" in row:
        postfix["own_coin"] = f"{_scalar(row, 'episode/own_coin_rate'):.2f}"
    bar.set_postfix(postfix)


def summarise(config: TrainConfig, rows: list[dict], num_seeds: int, seconds: float):
    """Final-phase statistics: the mean over the last 10 % of updates, per seed, then
    mean and standard deviation over seeds."""
    tail = rows[-max(1, len(rows) // 10) :]
    out: dict[str, Any] = {
        "env": config.env,
        "algorithm": config.label,
        "pain_mode": config.pain_mode,
        "network": config.network,
        "num_seeds": num_seeds,
        "updates": len(rows),
        "env_steps_per_seed": env_steps(config, len(rows)),
        "wall_seconds_this_session": seconds,
        "environment": environment_info(),
        "final": {},
    }
    for name in ("reward_per_step", "pain", "episode/own_coin_rate", "episode/return"):
        if name not in tail[0]:
            continue
        per_seed = np.array([np.asarray(r[name], np.float64) for r in tail])  # (U, S, ..)
        per_seed = np.nanmean(per_seed, axis=0)  # (S, ...)
        out["final"][name] = {
            "mean": np.nanmean(per_seed, axis=0).tolist(),
            "std": np.nanstd(per_seed, axis=0).tolist(),
        }
    return out


def write_outputs(out: Path, summary: dict, rows: list[dict]) -> None:
    write_json(out / "summary.json", summary)
    table = [
        [
            name,
            json.dumps(np.round(v["mean"], 3).tolist()),
            json.dumps(np.round(v["std"], 3).tolist()),
        ]
        for name, v in summary["final"].items()
    ]
    (out / "summary.md").write_text(
        f"# {summary['algorithm']} on {summary['env']} (pain {summary['pain_mode']})\n\n"
        f"{summary['num_seeds']} seeds, {summary['updates']} updates, "
        f"{summary['env_steps_per_seed']:,} env steps per seed; final 10 % of updates, "
        "mean and std over seeds (per agent where a list).\n\n"
        + markdown_table(["metric", "mean", "std"], table)
        + "\n"
    )
    plot_training(rows, out / "training.png", summary)


def plot_training(rows: list[dict], path: Path, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        n for n in ("reward_per_step", "episode/own_coin_rate", "pain") if n in rows[0]
    ]
    fig, axes = plt.subplots(
        1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False
    )
    updates = np.array([r["update"] for r in rows])
    for ax, name in zip(axes[0], names, strict=True):
        values = np.array([np.asarray(r[name], np.float64) for r in rows])  # (U, S, ..)
        values = values.reshape(len(rows), values.shape[1], -1)
        for agent in range(values.shape[2]):
            mean = np.nanmean(values[:, :, agent], axis=1)
            std = np.nanstd(values[:, :, agent], axis=1)
            learners = summary["algorithm"].split("+")
            label = f"agent {agent}" if values.shape[2] > 1 else None
            if label and len(learners) == values.shape[2]:
                label += f" ({learners[agent]})"
            ax.plot(updates, mean, label=label)
            ax.fill_between(updates, mean - std, mean + std, alpha=0.2)
        ax.set_title(name)
        ax.set_xlabel("update")
        if values.shape[2] > 1:
            ax.legend(fontsize=8)
    fig.suptitle(
        f"{summary['algorithm']} on {summary['env']}, pain {summary['pain_mode']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def restore_runner(out: Path, config: TrainConfig, num_seeds: int, seed: int = 0):
    """The latest checkpointed runner state of a run folder (for evaluation)."""
    trainer = make_trainer(config)
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    # The checkpoint's structure without compiling the init: shapes, then zeros.
    abstract = jax.eval_shape(jax.vmap(trainer.init), keys)

    def zeros(s):
        if jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(jnp.zeros(s.shape + (2,), jnp.uint32))
        return jnp.zeros(s.shape, s.dtype)

    runner = jax.tree.map(zeros, abstract)
    ckpt = Checkpoints(Path(out) / "checkpoints")
    try:
        latest = ckpt.latest()
        if latest is None:
            raise FileNotFoundError(f"no checkpoint in {out}/checkpoints")
        return ckpt.restore(latest, runner), trainer
    finally:
        ckpt.close()


__all__ = ["TrainingDiverged", "restore_runner", "train_run"]
