"""``pain-jax demo``: the main job on a small real default (CPU, a few minutes).

1. **Train** an Advantage Alignment learner (seat 0) against an independent PPO
   learner (seat 1) on the 3x3 Coin Game, both feeling pain in noise mode: several
   seeds in one ``vmap``, with a progress bar, metrics, checkpoints (rerunning the
   same command resumes) and training curves (:func:`pain_jax.learn.host.train_run`).
2. **League**: the two trained agents (seed 0) play each other and the fixed bots
   (always cooperate, always defect, random), pain on: per-step return of each seat,
   own-coin rate and mean pain (:func:`pain_jax.experiments.evaluate.league`).

Writes to ``--out``: ``train/`` (the run: ``metrics.jsonl``, ``summary.md``,
``training.png``, checkpoints), ``league.json``, ``league.png`` and ``demo.md``.
Short by design: the learners are still far from converged (see ``pain-jax reproduce
coin`` for the published league).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from pain_jax.experiments.report import environment_info, write_json
from pain_jax.learn.config import TrainConfig

#: The demo's run: AA (seat 0) vs PPO (seat 1), pain felt as noise in the networks.
DEMO_CONFIG = TrainConfig(
    env="coin_game",
    env_options={"grid_size": 3, "max_steps": 50},
    agent_algorithms=("aa", "ppo"),
    pain_mode="noise",
    pain_threshold=0.0,  # a step that pays less than 0 hurts (a coin taken from you)
    pain_scale=2.0,
    pain_sigma=0.5,
    num_envs=128,
    num_steps=50,
    num_updates=60,
    num_epochs=2,
    num_minibatches=2,
    lr=1e-3,
    ent_coef=0.01,
)
BOTS = ("always_cooperate", "always_defect", "random")


def league_rows(run_dir: Path, num_envs: int, seed: int) -> list[dict]:
    """The demo league: AA vs PPO, then each of them against every bot."""
    from pain_jax.experiments.evaluate import bot, league, run

    players = [run("AA", run_dir, 0), run("PPO", run_dir, 1)] + [bot(b) for b in BOTS]
    pairs = [(0, 1)] + [(i, 2 + b) for i in (0, 1) for b in range(len(BOTS))]
    return league(players, num_envs=num_envs, episodes=2, seed=seed, pairs=pairs)


def plot_league(rows: list[dict], path: Path) -> None:
    """Grouped bars: per-step return of each seat, one group per pairing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['seat0']}\nvs {r['seat1']}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 4))
    for seat, shift in ((0, -0.2), (1, 0.2)):
        ax.bar(
            x + shift,
            [r[f"return{seat}"] for r in rows],
            0.4,
            yerr=[r[f"return{seat}_se"] for r in rows],
            label=f"seat {seat}",
        )
    for xi, r in zip(x, rows, strict=True):
        ax.text(xi, ax.get_ylim()[1] * 0.9, f"own {r['own_coin_rate']:.2f}", ha="center")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("return per step")
    ax.set_title("Coin Game league, pain on (own = own-coin rate)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from pain_jax.experiments.evaluate import table
    from pain_jax.learn.host import train_run

    parser = argparse.ArgumentParser(
        prog="pain-jax demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3, help="seeds trained at once")
    parser.add_argument("--updates", type=int, default=DEMO_CONFIG.num_updates)
    parser.add_argument("--envs", type=int, default=DEMO_CONFIG.num_envs)
    parser.add_argument("--league-envs", type=int, default=256)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        config = DEMO_CONFIG.replace(num_updates=args.updates, num_envs=args.envs)
        if args.seeds < 1 or args.league_envs < 1:
            raise ValueError("--seeds and --league-envs must be >= 1")
    except ValueError as e:
        print(f"pain-jax demo: {e}", file=sys.stderr)
        return 2
    start = time.time()
    print(
        f"[1/2] training AA (seat 0) vs PPO (seat 1) on Coin Game, pain noise: "
        f"{args.seeds} seeds x {config.num_updates} updates x "
        f"{config.num_envs * config.num_steps} env steps"
    )
    summary = train_run(
        config,
        args.out / "train",
        num_seeds=args.seeds,
        seed=args.seed,
        chunk=10,
        progress=not args.no_progress,
    )
    print((args.out / "train" / "summary.md").read_text())
    print("[2/2] league: the trained agents vs each other and the bots, pain on")
    rows = league_rows(args.out / "train", args.league_envs, args.seed)
    md = table(rows)
    print(md)
    plot_league(rows, args.out / "league.png")
    seconds = time.time() - start
    write_json(
        args.out / "league.json",
        {
            "config": dataclasses.asdict(config),
            "training": {k: v for k, v in summary.items() if k != "runner"},
            "league": rows,
            "seconds": seconds,
            "environment": environment_info(),
        },
    )
    (args.out / "demo.md").write_text(
        "# pain_jax demo: Advantage Alignment vs PPO on Coin Game, pain on\n\n"
        f"{args.seeds} seeds x {config.num_updates} updates of {config.num_envs} "
        f"games x {config.num_steps} steps; pain noise (sigma {config.pain_sigma}, "
        f"scale {config.pain_scale}, threshold {config.pain_threshold}).  "
        f"Wall clock {seconds:.0f} s.\n\n"
        "## Training (final 10 % of updates; agent 0 = AA, agent 1 = PPO)\n\n"
        + (args.out / "train" / "summary.md").read_text().split("\n", 2)[2]
        + "\n![training](train/training.png)\n\n"
        "## League (seed 0's agents, pain on)\n\n"
        f"{args.league_envs} games x 2 episodes per pairing; returns per step "
        "(standard errors in league.json); own-coin rate over all pickups.\n\n"
        + md
        + "\n\n![league](league.png)\n"
    )
    print(f"wrote {args.out}/demo.md, league.json, league.png, train/ in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
