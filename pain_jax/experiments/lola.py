"""``pain-jax reproduce lola``: the LOLA exact-gradient tables on IPD and IMP.

Reproduces Foerster et al. (2018), exact value functions: initial logits ~ N(0, 1),
200 simultaneous updates, delta = eta = 1 (and 0.5), gradient ascent on the discounted
value ``V`` (as the original code did).  Prints and saves (JSON + markdown + PNG):

1. the main table: average reward per step (mean, std over seeds) of NL-NL,
   LOLA-LOLA, LOLA-NL at both step sizes, beside the published numbers and the
   difference; share of runs at tit-for-tat (IPD) / mixed Nash (IMP); look-ahead,
   higher-order rows and the value-scale investigation rows (climbing (1-gamma) V);
2. SOS vs LOLA on the tandem game (fixed points x + y = 1);
3. how pain changes the outcomes (IPD/IMP, pain off vs on).

Definitions printed with the table: a player "ended at tit-for-tat" when its final
P(C | start), P(C | CC), P(C | DC) > 0.5 and P(C | CD), P(C | DD) < 0.5 (own view);
"ended at the mixed Nash" (IMP) when all 5 final P(C | state) are within 0.1 of 0.5.

Value scale: the original exact-gradient code climbs V itself (not (1 - gamma) V);
the "per-step" rows climb (1 - gamma) V and show that with delta = eta = 1 this is
25x (IPD) slower and does not reproduce the published table.

Results are cached per row under ``OUT/rows/`` so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import jax
from tqdm.auto import tqdm

from pain_jax.experiments import lola_report as rep
from pain_jax.experiments import lola_rows as lr
from pain_jax.experiments.report import environment_info, write_json
from pain_jax.learn import exact_games as eg

PAIN_MODES = {"off": 0, "noise": 1, "dropout": 2}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pain-jax reproduce lola",
        description="Reproduce the LOLA exact-gradient tables (IPD, IMP), with "
        "look-ahead, higher-order and SOS rows, and the same tables under pain.",
    )
    p.add_argument("--seeds", type=int, default=1000, help="runs per row (default 1000)")
    p.add_argument("--updates", type=int, default=200, help="learning updates per run")
    p.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    p.add_argument("--out", type=Path, default=Path("runs/lola"), help="output folder")
    p.add_argument("--games", nargs="+", default=["ipd", "imp"], choices=["ipd", "imp"])
    p.add_argument(
        "--pain",
        choices=list(PAIN_MODES),
        default="off",
        help="pain mode of the main table (the pain table always compares off vs "
        "this mode, or noise when off)",
    )
    p.add_argument(
        "--pain-sigma", type=float, default=1.0, help="noise std per pain unit"
    )
    p.add_argument("--pain-scale", type=float, default=1.0, help="pain per reward unit")
    p.add_argument(
        "--pain-threshold",
        type=float,
        default=None,
        help="reward below this hurts (default: IPD -1.5, IMP 0)",
    )
    p.add_argument(
        "--rows",
        nargs="+",
        default=None,
        help="only these rows, e.g. NL-NL LOLA-LOLA (default: all)",
    )
    p.add_argument("--no-pain-table", action="store_true", help="skip the pain table")
    p.add_argument("--tandem-lr", type=float, default=0.1, help="step size on tandem")
    p.add_argument("--tandem-updates", type=int, default=100)
    p.add_argument(
        "--tandem-learners",
        nargs="+",
        default=["NL", "LOLA", "LA1", "HOLA2", "SOS"],
        choices=["NL", "LOLA", "LA1", "HOLA2", "SOS"],
    )
    p.add_argument("--fresh", action="store_true", help="ignore cached rows")
    p.add_argument("--no-plot", action="store_true")
    return p


class _Cache:
    """Per-row results keyed by everything that decides them (resume support)."""

    def __init__(self, folder: Path, fresh: bool):
        self.folder, self.fresh = folder, fresh
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, name: str, config: dict, compute):
        digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()
        path = self.folder / f"{name}-{digest[:10]}.json"
        if path.exists() and not self.fresh:
            return json.loads(path.read_text())["result"]
        start = time.perf_counter()
        result = compute()
        result["seconds"] = round(time.perf_counter() - start, 3)
        write_json(path, {"config": config, "result": result})
        return result


def _pain(args, game: str, mode: int):
    if mode == 0:
        return None
    return lr.pain_params(
        game, mode, args.pain_sigma, args.pain_scale, args.pain_threshold
    )


def _pain_config(pain) -> dict | None:
    return None if pain is None else {k: float(v) for k, v in vars(pain).items()}


def run_main_table(args, cache: _Cache, key) -> list[dict]:
    mode = PAIN_MODES[args.pain]
    rows = lr.main_rows(tuple(args.games))
    if args.rows:
        rows = [r for r in rows if r.name in args.rows]
    out = []
    for row in tqdm(rows, desc="LOLA table rows"):
        res, _ = _cached_row(args, cache, key, row, _pain(args, row.game, mode))
        out.append(res)
    return out


def _cached_row(args, cache: _Cache, key, row, pain) -> tuple[dict, dict]:
    """One table row, from the cache when an identical run is stored there."""
    config = {
        "row": row.key, "seeds": args.seeds, "updates": args.updates,
        "seed": args.seed, "pain": _pain_config(pain),
    }  # fmt: skip
    res = cache.get(
        row.key,
        config,
        lambda: lr.run_row(row, key, args.seeds, args.updates, pain),
    )
    lr.check_finite(res)
    return res, config


def run_tandem(args, cache: _Cache, key) -> list[dict]:
    out = []
    chosen = [t for t in lr.tandem_rows(args.tandem_lr) if t[0] in args.tandem_learners]
    for name, learner in tqdm(chosen, desc="tandem rows"):
        config = {
            "tandem": name, "lr": args.tandem_lr, "seeds": args.seeds,
            "updates": args.tandem_updates, "seed": args.seed,
        }  # fmt: skip
        out.append(
            cache.get(
                f"tandem_{name}",
                config,
                lambda n=name, ln=learner: lr.run_tandem(
                    n, ln, key, args.seeds, args.tandem_updates
                ),
            )
        )
    return out


def run_pain_table(args, cache: _Cache, key) -> list[dict]:
    mode = PAIN_MODES[args.pain] or PAIN_MODES["noise"]
    out = []
    names = [
        n for n in ("NL-NL", "LOLA-LOLA", "LOLA-NL") if not args.rows or n in args.rows
    ]
    pairs = [(g, n) for g in args.games for n in names]
    for game, name in tqdm(pairs, desc="pain table rows"):
        row = lr.Row(game, name, 1.0)
        for m in (0, mode):
            res, config = _cached_row(args, cache, key, row, _pain(args, game, m))
            out.append({**res, "pain_mode": m, "pain_params": config["pain"]})
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seeds < 1 or args.updates < 1:
        raise SystemExit("--seeds and --updates must be >= 1")
    out: Path = args.out
    cache = _Cache(out / "rows", args.fresh)
    key = jax.random.key(args.seed)

    start = time.perf_counter()
    main_rows = run_main_table(args, cache, key)
    tandem = run_tandem(args, cache, key)
    pain_rows = [] if args.no_pain_table else run_pain_table(args, cache, key)
    seconds = time.perf_counter() - start

    result = {
        "config": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
        },
        "definitions": {"tft": eg.TFT_DEFINITION, "nash": eg.NASH_DEFINITION},
        "environment": environment_info(),
        "seconds": round(seconds, 2),
        "main": main_rows,
        "tandem": tandem,
        "pain": pain_rows,
    }
    write_json(out / "lola_table.json", result)
    text = rep.markdown_report(result)
    (out / "lola_table.md").write_text(text)
    if not args.no_plot:
        rep.plot_policies(main_rows, out / "lola_policies.png")
        rep.plot_tandem(tandem, out / "tandem.png")
    print(text)
    print(f"\nwrote {out / 'lola_table.json'}, {out / 'lola_table.md'} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
