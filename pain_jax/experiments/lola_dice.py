"""``pain-jax reproduce lola_dice``: LOLA-DiCE on the sampled IPD (Foerster et al., 2018).

Two tabular memory-one learners (:mod:`pain_jax.learn.lola_dice`) play the sampled IPD
for ``--updates`` simultaneous updates, naive learners (``k = 0``) and LOLA-DiCE with
``k`` opponent look-ahead steps.  Reported: the per-step joint return (mean of both
players' mean reward per step) of the final policies on a fresh batch, mean and std
over seeds, beside the published figure (NL -1.99; k = 1, 2, 3: -1.19, -1.11, -1.10).

Settings (defaults; our recollection of the reference IPD code, not tuned here): batch
128 episodes of 150 steps, gamma 0.96, logits initialised at 0 (P(C) = 0.5), inner
look-ahead plain gradient steps of size 0.3 on fresh batches, outer Adam step 0.2,
DiCE with a detached tabular value baseline (``A_t = G_t - V(s_t)``, V fitted by Adam
0.1 on the discounted returns-to-go).  Seeds change only the sampling.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from pain_jax.experiments.report import environment_info, markdown_table, write_json
from pain_jax.learn.lola_dice import LolaDiceConfig, make_train

PUBLISHED = {0: -1.99, 1: -1.19, 2: -1.11, 3: -1.10}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pain-jax reproduce lola_dice",
        description="LOLA-DiCE vs naive learners on the sampled IPD (per-step joint "
        "return after N updates, beside the published figures).",
    )
    p.add_argument("--seeds", type=int, default=5, help="runs per row (default 5)")
    p.add_argument("--updates", type=int, default=200, help="learning updates per run")
    p.add_argument(
        "--lookahead",
        type=int,
        nargs="+",
        default=[0, 1, 2, 3],
        help="look-ahead steps per row (0 = naive learners)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("runs/lola_dice"), help="output folder"
    )
    p.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    p.add_argument("--batch", type=int, default=128, help="episodes per sampled batch")
    p.add_argument("--steps", type=int, default=150, help="episode length")
    p.add_argument("--lr-in", type=float, default=0.3, help="look-ahead step size")
    p.add_argument("--lr-out", type=float, default=0.2, help="outer Adam step size")
    p.add_argument(
        "--no-baseline", action="store_true", help="plain DiCE (no value baseline)"
    )
    return p


def run_row(config: LolaDiceConfig, seeds: int, seed: int) -> dict:
    """Train ``seeds`` runs at once (vmap) and summarise them."""
    keys = jax.random.split(jax.random.key(seed), seeds)
    train = jax.jit(jax.vmap(make_train(config)))
    start = time.perf_counter()
    _, metrics, final = jax.block_until_ready(train(keys))
    seconds = time.perf_counter() - start
    joint = np.asarray(final["returns"]).mean(-1)  # (seeds,)
    curve = np.asarray(metrics["returns"]).mean(-1)  # (seeds, updates)
    return {
        "lookahead": config.lookahead,
        "joint_per_step": joint.tolist(),
        "mean": float(joint.mean()),
        "std": float(joint.std()),
        "p_coop_mean": np.asarray(final["p_coop"]).mean(0).tolist(),  # (2, 5)
        "curve_mean": curve.mean(0).tolist(),
        "seconds_incl_compile": round(seconds, 2),
    }


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    rows = []
    for k in args.lookahead:
        config = LolaDiceConfig(
            lookahead=k,
            batch=args.batch,
            steps=args.steps,
            lr_in=args.lr_in,
            lr_out=args.lr_out,
            baseline=not args.no_baseline,
            updates=args.updates,
        )
        row = run_row(config, args.seeds, args.seed)
        row["config"] = dataclasses.asdict(config)
        rows.append(row)
        print(
            f"k={k}: joint per-step return {row['mean']:.3f} +- {row['std']:.3f} "
            f"({args.seeds} seeds, {row['seconds_incl_compile']:.1f} s)",
            flush=True,
        )
    headers = [
        "learners", "joint per-step return", "std", "published", "diff",
        "P(C) start/CC/CD/DC/DD (player 1)", "seconds",
    ]  # fmt: skip
    table = []
    for row in rows:
        k = row["lookahead"]
        pub = PUBLISHED.get(k) if args.updates == 200 else None
        table.append(
            [
                "NL" if k == 0 else f"LOLA-DiCE k={k}",
                row["mean"],
                row["std"],
                "-" if pub is None else pub,
                "-" if pub is None else row["mean"] - pub,
                "/".join(f"{p:.2f}" for p in row["p_coop_mean"][0]),
                row["seconds_incl_compile"],
            ]
        )
    md = markdown_table(headers, table)
    notes = (
        f"Sampled IPD, {args.seeds} seeds, {args.updates} updates, batch {args.batch} x "
        f"{args.steps} steps, gamma 0.96, lr_in {args.lr_in} (SGD), lr_out "
        f"{args.lr_out} (Adam), baseline {'off' if args.no_baseline else 'on'}; "
        "joint per-step return = mean over both players of the mean reward per step "
        "of the final policies on a fresh batch; std over seeds; seconds include "
        "compilation."
    )
    print(md)
    print(notes)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(
        args.out / "lola_dice.json",
        {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
         "published": PUBLISHED, "environment": environment_info()},
    )  # fmt: skip
    (args.out / "lola_dice.md").write_text(md + "\n\n" + notes + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
