"""``pain-jax experiment empathy``: does pain make agents hurt, help, retaliate, or
model each other?  The table this project exists to produce.

For each learner (Advantage Alignment ``aa``, independent PPO ``ppo``), each regime
(``mixed``: own rewards only, the default; ``cooperative``: ``shared_reward`` of the
rewards is common) and each pain condition

* ``off``: the pain dynamics run (so pain can be measured) but no network feels them;
* ``felt``: each agent's own pain is noise inside its own network (the mission's pain);
* ``felt_visible``: as ``felt``, and every agent sees the pain of the agents in its
  view (the wince: a channel with each visible agent's level at its cell),

it trains ``--seeds`` seeds of GRU agents on ``pain_grid`` (4 agents: two pairs, so
resonance can be measured), records rollouts of the trained agents and reports:

* behaviour (:func:`pain_jax.analysis.empathy_report`): return, harm rate, help rate,
  retaliation (P(B harms A within 5 steps | A harmed B) vs its baseline), resonance of
  pair (0, 1) with pair (2, 3) against a time-shuffled control;
* theory-of-mind probes (:func:`pain_jax.analysis.probe_report`) on agent B's GRU state
  for every ordered pair (A, B): (a) A's current pain (R²), (b) whether B's upcoming
  action harms A (balanced accuracy), (c) A's upcoming action, separately when A is in
  pain and not (balanced accuracy); each against the same probe on B's raw observation
  and on shuffled labels.

Runs that differ only in traced parameters (pain mode, shared reward) share one
compiled trainer, so the 12 runs compile 4 times.  Presets: ``cpu`` (minutes, tiny
agents that have barely learned: a smoke test of the pipeline, not a finding) and
``gpu`` (the real experiment).  Writes ``empathy.json``, ``empathy.md``,
``empathy.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from pain_jax.experiments.report import environment_info, markdown_table, write_json
from pain_jax.learn.config import TrainConfig
from pain_jax.pain.dynamics import NOISE, OFF

CONDITIONS = ("off", "felt", "felt_visible")
REGIMES = {"mixed": 0.0, "cooperative": 0.5}
PAIRS = [(0, 1), (1, 0), (2, 3), (3, 2)]  # ordered (A, B): B's state read for A


@dataclass(frozen=True)
class Preset:
    """Sizes of one empathy experiment."""

    config: TrainConfig
    seeds: int
    record_envs: int
    record_steps: int
    probes: tuple[str, ...]


_GRID = {
    "num_agents": 4,
    "size": 7,
    "view_radius": 2,
    "num_resources": 3,
    "num_hazards": 3,
    "max_steps": 50,
}
_CPU = TrainConfig(
    env="pain_grid",
    env_options=_GRID,
    network="gru",
    hidden=(32,),
    gru_hidden=32,
    pain_threshold=0.0,
    pain_scale=1.0,
    pain_sigma=0.5,
    num_envs=32,
    num_steps=25,
    num_updates=100,
    num_epochs=2,
    num_minibatches=2,
    lr=1e-3,
)
PRESETS = {
    "cpu": Preset(_CPU, seeds=2, record_envs=16, record_steps=100, probes=("linear",)),
    "gpu": Preset(
        _CPU.replace(
            env_options={**_GRID, "size": 11, "max_steps": 100},
            hidden=(128,),
            gru_hidden=128,
            num_envs=1024,
            num_steps=50,
            num_updates=2000,
            num_epochs=4,
            num_minibatches=8,
            lr=3e-4,
        ),
        seeds=5,
        record_envs=256,
        record_steps=400,
        probes=("linear", "mlp"),
    ),
}


def train_group(config: TrainConfig, runs: dict[str, tuple[int, float]], seeds: int, key):
    """Train every run of one compiled trainer: ``runs`` maps a name to its
    ``(pain mode, shared_reward)``; ``seeds`` seeds each, vmapped.  Returns
    ``(trainer, {name: (variables (S, A, ...), metrics)})``."""
    from tqdm.auto import tqdm

    from pain_jax.learn.train import make_trainer

    trainer = make_trainer(config)
    init = jax.jit(jax.vmap(trainer.init, in_axes=(0, None)))
    n = config.num_updates  # chunks of equal length (one compile) for the progress bar
    chunk = next(c for c in range(max(1, n // 10), 0, -1) if n % c == 0)
    step = jax.jit(jax.vmap(lambda r, p: trainer.run(r, chunk, p), in_axes=(0, None)))
    out = {}
    for name, (mode, shared) in runs.items():
        base = trainer.env_params
        params = base.replace(
            env=base.env.replace(shared_reward=jnp.float32(shared)),
            pain=base.pain.replace(mode=jnp.int32(mode)),
        )
        runner = init(jax.random.split(key, seeds), params)
        metrics = []
        with tqdm(total=config.num_updates, desc=name, unit="update") as bar:
            for _ in range(config.num_updates // chunk):
                runner, m = step(runner, params)
                metrics.append(jax.tree.map(np.asarray, m))
                bar.update(chunk)
                bar.set_postfix(reward=f"{float(np.mean(m['reward_per_step'])):+.3f}")
        merged = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *metrics)
        out[name] = (runner.variables, merged, params)
    return trainer, out


def analyse(trainer, variables, params, preset: Preset, key) -> dict:
    """Record every seed's agents, then the behaviour metrics and the probes (seeds
    pooled for the probes, averaged for the metrics)."""
    from pain_jax.analysis import empathy_report, probe_report, probe_report_by
    from pain_jax.analysis.record import probe_data, record_rollout

    seeds = jax.tree.leaves(variables)[0].shape[0]
    recs, behaviour = [], []
    for s in range(seeds):
        k_rec, k_emp = jax.random.split(jax.random.fold_in(key, s))
        rec = record_rollout(
            trainer,
            jax.tree.map(lambda x, s=s: x[s], variables),
            k_rec,
            preset.record_envs,
            preset.record_steps,
            params,
        )
        recs.append(rec)
        rep = empathy_report(
            rec["harm"], rec["help"], rec["pain"], rec["reset"], key=k_emp
        )
        rep["return_per_step"] = float(rec["reward"].mean())
        behaviour.append(rep)
    data = [probe_data(r, PAIRS) for r in recs]
    offset = np.cumsum([0] + [int(d["groups"].max()) + 1 for d in data[:-1]])
    cat = {
        k: np.concatenate([d[k] for d in data])
        for k in ("pain", "harm_next", "action_next", "in_pain")
    }
    groups = np.concatenate([d["groups"] + o for d, o in zip(data, offset, strict=True)])
    features = {
        f: np.concatenate([d["features"][f] for d in data])
        for f in ("hidden", "observation")
    }
    k1, k2, k3 = jax.random.split(jax.random.fold_in(key, 10_000), 3)
    opts = dict(groups=groups, probes=preset.probes)
    probes = {
        "pain": probe_report(features, cat["pain"], "regression", k1, **opts),
        "harm_next": probe_report(
            features, cat["harm_next"], "classification", k2, num_classes=2, **opts
        ),
        "action_next": probe_report_by(
            features,
            cat["action_next"],
            {"in_pain": cat["in_pain"], "no_pain": ~cat["in_pain"]},
            k3,
            kind="classification",
            num_classes=trainer.env.num_actions,
            **opts,
        ),
    }
    return {"behaviour": behaviour, "probes": probes}


def _mean(values) -> float:
    v = np.array([np.nan if x is None else x for x in values], np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def summary_row(name: str, result: dict, probe: str) -> dict:
    """One flat row of the table (behaviour averaged over seeds)."""
    b = result["behaviour"]
    p = result["probes"]

    def score(report, metric, feature="hidden", suffix=""):
        return report["results"][feature][probe][metric + suffix]

    res = [x["resonance"] for x in b]
    return {
        "run": name,
        "return": _mean([x["return_per_step"] for x in b]),
        "harm_rate": _mean([x["harm_rate"]["mean"] for x in b]),
        "help_rate": _mean([x["help_rate"]["mean"] for x in b]),
        "retaliation_p": _mean([x["retaliation"]["pooled"]["p_given_harm"] for x in b]),
        "retaliation_base": _mean([x["retaliation"]["pooled"]["p_baseline"] for x in b]),
        "resonance": _mean([r["score"] for r in res if r]),
        "resonance_control": _mean([r["control_mean"] for r in res if r]),
        "pain_r2_hidden": score(p["pain"], "r2"),
        "pain_r2_obs": score(p["pain"], "r2", "observation"),
        "pain_r2_shuffled": score(p["pain"], "r2", suffix="_shuffled"),
        "harm_bacc_hidden": score(p["harm_next"], "balanced_accuracy"),
        "harm_bacc_obs": score(p["harm_next"], "balanced_accuracy", "observation"),
        "harm_bacc_shuffled": score(
            p["harm_next"], "balanced_accuracy", suffix="_shuffled"
        ),
        "action_bacc_in_pain": score(p["action_next"]["in_pain"], "balanced_accuracy"),
        "action_bacc_no_pain": score(p["action_next"]["no_pain"], "balanced_accuracy"),
        "action_chance": p["action_next"]["no_pain"]["chance"].get("balanced_accuracy"),
    }


COLUMNS = [
    ("run", "run"),
    ("return", "return/step"),
    ("harm_rate", "harm rate"),
    ("help_rate", "help rate"),
    ("retaliation_p", "P(retaliate)"),
    ("retaliation_base", "baseline"),
    ("resonance", "resonance"),
    ("resonance_control", "shuffled"),
    ("pain_r2_hidden", "pain R² hidden"),
    ("pain_r2_obs", "obs"),
    ("pain_r2_shuffled", "shuffled"),
    ("harm_bacc_hidden", "harm-next bacc hidden"),
    ("harm_bacc_obs", "obs"),
    ("harm_bacc_shuffled", "shuffled"),
    ("action_bacc_in_pain", "A's action bacc, A in pain"),
    ("action_bacc_no_pain", "not in pain"),
    ("action_chance", "chance"),
]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["run"] for r in rows]
    x = np.arange(len(rows))
    panels = [
        ("behaviour", [("harm_rate", "harm"), ("help_rate", "help")]),
        ("retaliation", [("retaliation_p", "after harm"), ("retaliation_base", "base")]),
        (
            "probe: A's pain (R²)",
            [
                ("pain_r2_hidden", "B hidden"),
                ("pain_r2_obs", "B obs"),
                ("pain_r2_shuffled", "shuffled"),
            ],
        ),
        (
            "probe: B harms A next (bal. acc.)",
            [
                ("harm_bacc_hidden", "B hidden"),
                ("harm_bacc_obs", "B obs"),
                ("harm_bacc_shuffled", "shuffled"),
            ],
        ),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, len(rows)), 3 * len(panels)))
    for ax, (title, series) in zip(axes, panels, strict=True):
        width = 0.8 / len(series)
        for i, (k, label) in enumerate(series):
            ax.bar(
                x + (i - (len(series) - 1) / 2) * width,
                [r[k] for r in rows],
                width,
                label=label,
            )
        ax.set_title(title)
        ax.set_xticks(x, names if ax is axes[-1] else [], rotation=45, ha="right")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pain-jax experiment empathy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--preset", default="cpu", help=f"one of {list(PRESETS)}")
    parser.add_argument("--out", type=Path, default=Path("runs/empathy"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=None, help="override the preset")
    parser.add_argument("--updates", type=int, default=None, help="override the preset")
    parser.add_argument("--algorithms", default="aa,ppo")
    parser.add_argument("--regimes", default=",".join(REGIMES))
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        if args.preset not in PRESETS:
            raise ValueError(
                f"unknown preset {args.preset!r}; available: {list(PRESETS)}"
            )
        preset = PRESETS[args.preset]
        changes = {} if args.updates is None else {"num_updates": args.updates}
        preset = dataclasses.replace(
            preset,
            config=preset.config.replace(**changes),
            seeds=preset.seeds if args.seeds is None else args.seeds,
        )
        if preset.seeds < 1:
            raise ValueError("--seeds must be >= 1")
        lists = {}
        for flag, allowed in (
            ("algorithms", ("aa", "ppo", "aa_pg")),
            ("regimes", tuple(REGIMES)),
            ("conditions", CONDITIONS),
        ):
            lists[flag] = [v for v in getattr(args, flag).split(",") if v]
            bad = [v for v in lists[flag] if v not in allowed]
            if bad or not lists[flag]:
                raise ValueError(f"--{flag}: unknown {bad} ; available: {list(allowed)}")
    except ValueError as e:
        print(f"pain-jax experiment empathy: {e}", file=sys.stderr)
        return 2
    start = time.time()
    key = jax.random.key(args.seed)
    results, rows = {}, []
    for algorithm in lists["algorithms"]:
        for visible in (False, True):
            conditions = [
                c for c in lists["conditions"] if (c == "felt_visible") == visible
            ]
            if not conditions:
                continue
            config = preset.config.replace(
                algorithm=algorithm, pain_mode="noise", observe_others_pain=visible
            )
            runs = {
                f"{algorithm}/{regime}/{c}": (OFF if c == "off" else NOISE, shared)
                for regime, shared in ((r, REGIMES[r]) for r in lists["regimes"])
                for c in conditions
            }
            trainer, trained = train_group(config, runs, preset.seeds, key)
            for name, (variables, metrics, params) in trained.items():
                print(f"analysing {name} ...")
                results[name] = analyse(trainer, variables, params, preset, key)
                results[name]["training_reward"] = metrics["reward_per_step"][:, -1]
                rows.append(summary_row(name, results[name], preset.probes[0]))
    seconds = time.time() - start
    md = markdown_table(
        [h for _, h in COLUMNS], [[r[k] for k, _ in COLUMNS] for r in rows]
    )
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(rows, args.out / "empathy.png")
    write_json(
        args.out / "empathy.json",
        {
            "preset": args.preset,
            "config": dataclasses.asdict(preset.config),
            "seeds": preset.seeds,
            "rows": rows,
            "results": results,
            "seconds": seconds,
            "environment": environment_info(),
        },
    )
    c = preset.config
    (args.out / "empathy.md").write_text(
        f"# Empathy experiment ({args.preset} preset)\n\n"
        f"pain_grid {c.env_options}; GRU agents, {preset.seeds} seeds x "
        f"{c.num_updates} updates of {c.num_envs} games x {c.num_steps} steps per run; "
        f"rollouts of {preset.record_envs} games x {preset.record_steps} steps per seed "
        f"recorded after training.  Behaviour: mean over seeds.  Probes "
        f"({preset.probes[0]}) pooled over seeds and the ordered pairs {PAIRS}, held-out "
        "episodes; 'obs' = the same probe on B's raw observation, 'shuffled' = trained "
        f"on shuffled labels.  Wall clock {seconds:.0f} s.\n\n" + md + "\n\n"
        "![empathy](empathy.png)\n"
    )
    print(f"wrote {args.out}/empathy.md, empathy.json, empathy.png in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
