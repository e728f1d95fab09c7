"""Time per row of the LOLA exact-gradient table (1000 seeds x 200 updates).

For every row of ``pain-jax reproduce lola`` (both games, both step sizes, look-ahead,
higher-order and value-scale rows) this measures the first call (compilation + run)
and then the median of ``--repeats`` runs with fresh keys (compiled).  The target of
issue 4 is the sum of the compiled run times, all rows, under 30 s on a 2-core CPU.
Results go to ``benchmarks/results/lola_table_<date>_<hardware>.{json,md}``.

    .venv/bin/python benchmarks/lola_table.py [--seeds 1000] [--updates 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from pathlib import Path

import jax

from pain_jax.experiments import lola_rows as lr
from pain_jax.experiments.report import (
    environment_info,
    fresh_stem,
    markdown_table,
    write_json,
)
from pain_jax.learn import exact_games as eg
from pain_jax.learn.exact_play import play


def _timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def bench_row(l1, l2, game, seeds: int, updates: int, repeats: int) -> dict:
    first = _timed(lambda: play(l1, l2, game, jax.random.key(0), seeds, updates))
    runs = [
        _timed(lambda i=i: play(l1, l2, game, jax.random.key(i + 1), seeds, updates))
        for i in range(repeats)
    ]
    return {"first_call_s": first, "run_s": statistics.median(runs), "runs_s": runs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=1000)
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    p.add_argument("--notes", default="", help="free text stored with the result")
    args = p.parse_args(argv)

    rows = []
    for row in lr.main_rows():
        l1, l2 = row.learners
        res = bench_row(l1, l2, lr.game_of(row), args.seeds, args.updates, args.repeats)
        rows.append({"row": row.key, **res})
        print(
            f"{row.key:32s} first {res['first_call_s']:6.2f} s  run {res['run_s']:6.3f} s"
        )
    for name, learner in lr.tandem_rows():
        res = bench_row(learner, learner, eg.TandemGame(), args.seeds, 100, args.repeats)
        rows.append({"row": f"tandem_{name}", **res})
        first, run = res["first_call_s"], res["run_s"]
        print(f"tandem_{name:25s} first {first:6.2f} s  run {run:6.3f} s")

    total = sum(r["run_s"] for r in rows)
    total_first = sum(r["first_call_s"] for r in rows)
    hardware = f"{jax.default_backend()}-{os.cpu_count()}core"
    date = dt.date.today().isoformat()
    result = {
        "benchmark": "lola_table",
        "seeds": args.seeds,
        "updates": args.updates,
        "repeats": args.repeats,
        "environment": environment_info(),
        "hardware": hardware,
        "rows": rows,
        "total_run_s": total,
        "total_first_call_s": total_first,
        "target_total_run_s": 30.0,
        "notes": args.notes,
    }
    stem = fresh_stem(args.out / f"lola_table_{date}_{hardware}")
    write_json(stem.with_suffix(".json"), result)
    table = markdown_table(
        ["row", "first call (compile + run) s", "run s (median)"],
        [[r["row"], r["first_call_s"], r["run_s"]] for r in rows],
        floatfmt=".3f",
    )
    text = (
        f"# LOLA table timing, {date}, {hardware}\n\n"
        f"{args.seeds} seeds x {args.updates} updates per row (tandem: 100 updates); "
        f"run = median of {args.repeats} compiled runs.\n\n{table}\n\n"
        f"Total compiled run time: {total:.2f} s (target < 30 s). "
        f"Total first calls: {total_first:.1f} s.\n\nNotes: {args.notes}\n"
    )
    stem.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
