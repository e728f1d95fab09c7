"""``pain-jax reproduce coin``: the Advantage Alignment Coin Game league, with pain.

For each learner (Advantage Alignment, ``aa``; independent PPO, ``ppo``) and each
pain mode (``off``, ``noise``, ``dropout``) this trains ``--seeds`` seeds of
self-play on the 3x3 Coin Game (one coin at a time, 50-step episodes) with
:func:`pain_jax.learn.host.train_run` (progress bar, checkpoints: rerunning the
same command resumes), then plays every seed's trained pair against each other and
seat 0 of every seed against the fixed bots (always cooperate, always defect,
random), pain on as trained.  The league is reported as mean and standard deviation
over seeds, beside the published figures (Duque et al., ICLR 2025; per-step return of
the learner / its opponent):

==================  ============
pairing             published
==================  ============
self-play           0.28 / 0.28
always_cooperate    0.35 / 0.31
always_defect       -0.08 / 0.15
random              0.26 / -0.18
==================  ============

Independent PPO is the contrast: it should reach the selfish outcome (own-coin rate
near or below the 0.5 of random play).  With pain on, the same table answers the
project's first question: does feeling pain change cooperation (own-coin rate,
return in self-play) or exploitation (return against always-defect)?

Writes ``coin_league.json``, ``coin_league.md``, ``coin_league.png`` and
``curves.png`` to ``--out`` and one run folder per learner and pain mode.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from pain_jax.experiments.report import environment_info, markdown_table, write_json
from pain_jax.learn.config import TrainConfig

PUBLISHED = {  # learner / opponent per-step return, Advantage Alignment paper
    "self-play": (0.28, 0.28),
    "always_cooperate": (0.35, 0.31),
    "always_defect": (-0.08, 0.15),
    "random": (0.26, -0.18),
}
BOTS = ("always_cooperate", "always_defect", "random")
PAIN_MODES = ("off", "noise", "dropout")

#: The self-play run of every learner; pain fields set per mode by :func:`config_for`.
BASE = TrainConfig(
    env="coin_game",
    env_options={"grid_size": 3, "max_steps": 50},
    num_envs=128,
    num_steps=50,
    num_updates=300,
    num_epochs=2,
    num_minibatches=2,
    lr=1e-3,
    ent_coef=0.01,
    gamma=0.96,
    aa_beta=1.0,
    pain_threshold=0.0,  # a step paying less than nothing (a coin taken) hurts
    pain_scale=2.0,
    pain_sigma=0.5,
    pain_dropout_rate=0.2,
)


def config_for(algorithm: str, pain_mode: str, **changes) -> TrainConfig:
    """The run of ``algorithm`` (``"aa"``, ``"ppo"``, ``"aa_pg"``) with pain mode
    ``pain_mode``, plus ``changes``."""
    return BASE.replace(algorithm=algorithm, pain_mode=pain_mode, **changes)


def league_for(run_dir: Path, name: str, num_envs: int, seed: int) -> list[dict]:
    """Every seed's pair against each other, and its seat 0 against every bot."""
    from pain_jax.experiments.evaluate import bot, league, run_seeds

    seat0, seat1 = run_seeds(name, run_dir, 0), run_seeds(name, run_dir, 1)
    players = seat0 + seat1 + [bot(b) for b in BOTS]
    n = len(seat0)
    pairs = []
    for s in range(n):
        pairs.append((s, n + s))
        pairs += [(s, 2 * n + b) for b in range(len(BOTS))]
    rows = league(players, num_envs=num_envs, episodes=2, seed=seed, pairs=pairs)
    pairings = ("self-play",) + BOTS
    for i, row in enumerate(rows):
        row["seed"], row["pairing"] = divmod(i, len(pairings))
        row["pairing"] = pairings[row["pairing"]]
    return rows


def aggregate(rows: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """``pairing -> metric -> (mean, std over seeds)`` for the league ``rows``."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for pairing in ("self-play",) + BOTS:
        sel = [r for r in rows if r["pairing"] == pairing]
        out[pairing] = {}
        for k in ("return0", "return1", "own_coin_rate", "own_coin0", "pain0", "pain1"):
            v = np.array([r[k] for r in sel], np.float64)
            out[pairing][k] = (float(np.nanmean(v)), float(np.nanstd(v)))
    return out


def _pm(mean_std: tuple[float, float]) -> str:
    return f"{mean_std[0]:+.3f} ± {mean_std[1]:.3f}"


def league_table(results: dict[str, dict]) -> str:
    """Markdown: one row per (run, pairing) with the published figure beside it."""
    rows = []
    for run, agg in results.items():
        for pairing, m in agg.items():
            pub = PUBLISHED[pairing] if run.startswith("aa") else None
            rows.append(
                [
                    run,
                    pairing,
                    _pm(m["return0"]),
                    _pm(m["return1"]),
                    f"{pub[0]:+.2f} / {pub[1]:+.2f}" if pub else "",
                    _pm(m["own_coin_rate"]),
                    _pm(m["pain0"]),
                ]
            )
    return markdown_table(
        [
            "run",
            "seat 0 vs",
            "return/step seat 0",
            "return/step seat 1",
            "published (AA)",
            "own-coin rate",
            "pain seat 0",
        ],
        rows,
    )


def plot(results: dict[str, dict], run_dirs: dict[str, Path], out: Path) -> None:
    """``coin_league.png`` (returns per pairing, bars over runs) and ``curves.png``
    (own-coin rate and reward per step over training, mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairings = ("self-play",) + BOTS
    fig, axes = plt.subplots(
        1, len(pairings), figsize=(4 * len(pairings), 4), sharey=True
    )
    names = list(results)
    x = np.arange(len(names))
    for ax, pairing in zip(axes, pairings, strict=True):
        for seat, shift in ((0, -0.2), (1, 0.2)):
            m = [results[n][pairing][f"return{seat}"] for n in names]
            ax.bar(x + shift, [a for a, _ in m], 0.4, yerr=[b for _, b in m])
        if pairing in PUBLISHED:
            for seat, style in ((0, "--"), (1, ":")):
                ax.axhline(PUBLISHED[pairing][seat], color="grey", ls=style, lw=1)
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"seat 0 vs {pairing}")
        ax.axhline(0, color="black", lw=0.5)
    axes[0].set_ylabel("return per step (left bar seat 0, right seat 1)")
    fig.suptitle("Coin Game league; grey lines: published AA (dashed seat 0)")
    fig.tight_layout()
    fig.savefig(out / "coin_league.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, path in run_dirs.items():
        rows = [json.loads(line) for line in (path / "metrics.jsonl").open()]
        updates = [r["update"] for r in rows]
        own = [np.nanmean(np.asarray(r["episode/own_coin_rate"], float)) for r in rows]
        reward = [np.mean(r["reward_per_step"]) for r in rows]
        axes[0].plot(updates, own, label=name)
        axes[1].plot(updates, reward, label=name)
    axes[0].set_title("own-coin rate (mean over seeds)")
    axes[1].set_title("reward per step (mean over agents and seeds)")
    axes[1].axhline(0.28, color="grey", ls="--", lw=1, label="published AA 0.28")
    for ax in axes:
        ax.set_xlabel("update")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from pain_jax.learn.host import train_run

    parser = argparse.ArgumentParser(
        prog="pain-jax reproduce coin", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce_coin"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--updates", type=int, default=BASE.num_updates)
    parser.add_argument("--envs", type=int, default=BASE.num_envs)
    parser.add_argument(
        "--algorithms",
        default="aa,ppo",
        help="comma-separated: aa, aa_pg, ppo, lola_dice",
    )
    parser.add_argument("--pain", default=",".join(PAIN_MODES), help="comma-separated")
    parser.add_argument("--league-envs", type=int, default=256)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        algorithms = [a for a in args.algorithms.split(",") if a]
        modes = [m for m in args.pain.split(",") if m]
        bad = [m for m in modes if m not in PAIN_MODES]
        if bad:
            raise ValueError(f"unknown pain mode {bad[0]!r}; available: {PAIN_MODES}")
        if args.seeds < 1 or args.league_envs < 1:
            raise ValueError("--seeds and --league-envs must be >= 1")
        configs = {
            f"{a}_{m}": config_for(a, m, num_updates=args.updates, num_envs=args.envs)
            for a in algorithms
            for m in modes
        }
    except ValueError as e:
        print(f"pain-jax reproduce coin: {e}", file=sys.stderr)
        return 2
    start = time.time()
    results, all_rows, summaries, run_dirs = {}, [], {}, {}
    for i, (name, config) in enumerate(configs.items()):
        print(f"[{i + 1}/{len(configs)}] {name}: {args.seeds} seeds of self-play")
        run_dirs[name] = args.out / name
        summary = train_run(
            config,
            run_dirs[name],
            num_seeds=args.seeds,
            seed=args.seed,
            progress=not args.no_progress,
        )
        summaries[name] = {k: v for k, v in summary.items() if k != "runner"}
        rows = league_for(run_dirs[name], name, args.league_envs, args.seed)
        for r in rows:
            r["run"] = name
        all_rows += rows
        results[name] = aggregate(rows)
    seconds = time.time() - start
    md = league_table(results)
    print(md)
    plot(results, run_dirs, args.out)
    write_json(
        args.out / "coin_league.json",
        {
            "configs": {n: dataclasses.asdict(c) for n, c in configs.items()},
            "published": PUBLISHED,
            "league": results,
            "rows": all_rows,
            "training": summaries,
            "seconds": seconds,
            "environment": environment_info(),
        },
    )
    first = next(iter(configs.values()))
    (args.out / "coin_league.md").write_text(
        "# Coin Game league: Advantage Alignment and PPO self-play, pain off and on\n\n"
        f"{args.seeds} seeds per run, {first.num_updates} updates of "
        f"{first.num_envs} games x {first.num_steps} steps; league: "
        f"{args.league_envs} games x 2 episodes per pairing and seed; mean ± std over "
        f"seeds.  Seat 0 is the trained learner (in self-play its trained partner "
        f"sits in seat 1).  Wall clock {seconds:.0f} s (training + league).\n\n"
        + md
        + "\n\n![league](coin_league.png)\n\n![curves](curves.png)\n"
    )
    print(f"wrote {args.out}/coin_league.md, coin_league.json, coin_league.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
