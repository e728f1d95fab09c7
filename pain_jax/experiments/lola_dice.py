"""``pain-jax reproduce lola_dice``: LOLA-DiCE on the sampled IPD (Foerster et al., 2018).

Two tabular memory-one learners (:mod:`pain_jax.learn.lola_dice`) play the sampled IPD
for ``--updates`` simultaneous updates, naive learners (``k = 0``) and LOLA-DiCE with
``k`` opponent look-ahead steps.  Reported per row, mean and std over seeds, for the
final policies on a fresh batch:

* the paper's score, the normalised discounted return ``(1 - gamma) sum_t gamma^t r_t``
  averaged over both players (what the authors' code logs and their figure plots;
  published NL -1.99; k = 1, 2, 3: -1.19, -1.11, -1.10, read at 200 iterations);
* the undiscounted mean reward per step over the whole 150-step episode;
* the share of seeds whose score is above -1.5 (closer to mutual cooperation than
  to mutual defection).

Settings (defaults) follow the authors' released IPD code: batch 64 episodes of 150
steps (the figure's runs), gamma 0.96, plain SGD with lr 0.3 for the look-ahead and
0.2 for the real update, no critic but each time step's batch-mean reward subtracted
(``--baseline batch_mean``), logits drawn from a normal truncated at 2 std with std
``1/sqrt(5)``.  ``--optimizer adam --init-std 0 --baseline value`` is the earlier
setting of this project (and of a popular PyTorch re-implementation).  Seeds change
the initial logits and the sampling.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax
import numpy as np

from pain_jax.experiments.report import environment_info, markdown_table, write_json
from pain_jax.learn.lola_dice import BASELINES, LolaDiceConfig, make_train

PUBLISHED = {0: -1.99, 1: -1.19, 2: -1.11, 3: -1.10}
#: a seed "cooperates" when its score is closer to mutual cooperation (-1) than to
#: mutual defection (-2)
COOPERATION_THRESHOLD = -1.5


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
    p.add_argument("--batch", type=int, default=64, help="episodes per sampled batch")
    p.add_argument("--steps", type=int, default=150, help="episode length")
    p.add_argument("--lr-in", type=float, default=0.3, help="look-ahead SGD step size")
    p.add_argument(
        "--lr-out", type=float, default=0.2, help="step size of the real update"
    )
    p.add_argument(
        "--optimizer",
        choices=("sgd", "adam"),
        default="sgd",
        help="optimiser of the real update (default sgd, as the reference code)",
    )
    p.add_argument(
        "--baseline",
        choices=BASELINES,
        default="batch_mean",
        help="variance reduction: batch_mean (reference code), value (tabular "
        "critic), none",
    )
    p.add_argument("--no-baseline", action="store_true", help="same as --baseline none")
    p.add_argument(
        "--init-std",
        type=float,
        default=5**-0.5,
        help="std of the initial logits (truncated normal; 0 = all P(C) = 0.5)",
    )
    return p


def run_row(config: LolaDiceConfig, seeds: int, seed: int) -> dict:
    """Train ``seeds`` runs at once (vmap) and summarise them."""
    keys = jax.random.split(jax.random.key(seed), seeds)
    train = jax.jit(jax.vmap(make_train(config)))
    start = time.perf_counter()
    _, metrics, final = jax.block_until_ready(train(keys))
    seconds = time.perf_counter() - start
    score = np.asarray(final["discounted"]).mean(-1)  # (seeds,)
    joint = np.asarray(final["returns"]).mean(-1)  # (seeds,)
    return {
        "lookahead": config.lookahead,
        "score_per_seed": score.tolist(),
        "score_mean": float(score.mean()),
        "score_std": float(score.std()),
        "cooperating_share": float((score > COOPERATION_THRESHOLD).mean()),
        "joint_per_step": joint.tolist(),
        "mean": float(joint.mean()),
        "std": float(joint.std()),
        "p_coop_mean": np.asarray(final["p_coop"]).mean(0).tolist(),  # (2, 5)
        "curve_score_mean": np.asarray(metrics["discounted"]).mean((0, 2)).tolist(),
        "curve_mean": np.asarray(metrics["returns"]).mean((0, 2)).tolist(),
        "seconds_incl_compile": round(seconds, 2),
    }


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    baseline = "none" if args.no_baseline else args.baseline
    rows = []
    for k in args.lookahead:
        config = LolaDiceConfig(
            lookahead=k,
            batch=args.batch,
            steps=args.steps,
            lr_in=args.lr_in,
            lr_out=args.lr_out,
            optimizer=args.optimizer,
            baseline=baseline,
            updates=args.updates,
            init_std=args.init_std,
        )
        row = run_row(config, args.seeds, args.seed)
        row["config"] = dataclasses.asdict(config)
        rows.append(row)
        print(
            f"k={k}: score {row['score_mean']:.3f} +- {row['score_std']:.3f}, mean "
            f"reward per step {row['mean']:.3f} +- {row['std']:.3f} ({args.seeds} "
            f"seeds, {row['seconds_incl_compile']:.1f} s)",
            flush=True,
        )
    headers = [
        "learners", "score (paper's)", "std", "published", "diff",
        "mean reward per step", "std", "seeds > -1.5",
        "P(C) start/CC/CD/DC/DD (player 1)", "seconds",
    ]  # fmt: skip
    table = []
    for row in rows:
        k = row["lookahead"]
        pub = PUBLISHED.get(k) if args.updates == 200 else None
        table.append(
            [
                "NL" if k == 0 else f"LOLA-DiCE k={k}",
                row["score_mean"],
                row["score_std"],
                "-" if pub is None else pub,
                "-" if pub is None else row["score_mean"] - pub,
                row["mean"],
                row["std"],
                f"{row['cooperating_share']:.0%}",
                "/".join(f"{p:.2f}" for p in row["p_coop_mean"][0]),
                row["seconds_incl_compile"],
            ]
        )
    md = markdown_table(headers, table)
    notes = (
        f"Sampled IPD, {args.seeds} seeds, {args.updates} updates, batch {args.batch} x "
        f"{args.steps} steps, gamma 0.96, lr_in {args.lr_in} (SGD), lr_out "
        f"{args.lr_out} ({args.optimizer}), baseline {baseline}, init std "
        f"{args.init_std:.3f}. Score = (1 - gamma) sum_t gamma^t r_t averaged over both "
        "players (the paper's figure); mean reward per step = undiscounted mean over "
        "the episode; both of the final policies on a fresh batch; std over seeds; "
        "seconds include compilation."
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
