"""The ``pain-jax`` command line.

Sub-commands dispatch lazily to thin programs so that ``pain-jax --help`` is instant
and one sub-command's imports never slow another:

* ``pain-jax demo``               the README's main job on a small real default
* ``pain-jax reproduce NAME``     a published table (``lola``, ``lola_dice``, ``coin``) or
                                  the games cross-check (``games``)
* ``pain-jax train``              train agents (PPO, Advantage Alignment), pain on/off
* ``pain-jax evaluate``           a league of bots and trained runs on Coin Game
* ``pain-jax experiment NAME``    the project's experiments (``empathy``)
* ``pain-jax bench NAME``         throughput benchmarks from ``benchmarks/``

Every sub-command writes its results (JSON, markdown, PNG) to ``--out``.
"""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys
from pathlib import Path

#: name -> "module:function" taking ``argv`` and returning an exit code.
REPRODUCTIONS = {
    "games": "pain_jax.experiments.games:main",
    "coin": "pain_jax.experiments.coin:main",
    "lola": "pain_jax.experiments.lola:main",
    "lola_dice": "pain_jax.experiments.lola_dice:main",
}
#: ``pain-jax experiment NAME``: the project's own experiments.
EXPERIMENTS = {
    "empathy": "pain_jax.experiments.empathy:main",
}
COMMANDS = {
    "demo": "pain_jax.experiments.demo:main",
    "train": "pain_jax.experiments.train:main",
    "evaluate": "pain_jax.experiments.evaluate:main",
}
BENCHMARKS_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def _call(target: str, argv: list[str]) -> int:
    module, func = target.split(":")
    return int(getattr(importlib.import_module(module), func)(argv) or 0)


def _benchmarks() -> list[str]:
    if not BENCHMARKS_DIR.is_dir():
        return []
    return sorted(
        p.stem for p in BENCHMARKS_DIR.glob("*.py") if not p.stem.startswith("_")
    )


def _bench(name: str, argv: list[str]) -> int:
    names = _benchmarks()
    if name not in names:
        where = (
            f" in {BENCHMARKS_DIR}" if names else " (benchmarks/ ships with a checkout)"
        )
        print(f"unknown benchmark {name!r}; available{where}: {', '.join(names)}")
        return 2
    module = runpy.run_path(str(BENCHMARKS_DIR / f"{name}.py"), run_name="pain_jax_bench")
    code = module["main"](argv)  # some benchmarks return their results
    return code if isinstance(code, int) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pain-jax",
        description="Vectorized multi-agent environments and opponent shaping with pain.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser(
        "demo", help="run the main job on a small real default", add_help=False
    )
    sub.add_parser("train", help="train agents (pain-jax train --help)", add_help=False)
    sub.add_parser("evaluate", help="league of bots and trained runs", add_help=False)
    rep = sub.add_parser("reproduce", help="reproduce a published table")
    rep.add_argument("name", choices=sorted(REPRODUCTIONS), help="which table")
    exp = sub.add_parser("experiment", help="run one of the project's experiments")
    exp.add_argument("name", choices=sorted(EXPERIMENTS), help="which experiment")
    bench = sub.add_parser("bench", help="run a throughput benchmark")
    bench.add_argument("name", help="benchmark name: " + ", ".join(_benchmarks()))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    command, rest = argv[0], argv[1:]
    if command in COMMANDS:
        return _call(COMMANDS[command], rest)
    if command in ("reproduce", "bench", "experiment"):
        if not rest or rest[0].startswith("-"):
            parser.parse_args([command, *rest])  # prints usage (and help on -h)
            return 2
        name, rest = rest[0], rest[1:]
        if command == "bench":
            return _bench(name, rest)
        if command == "experiment":
            if name not in EXPERIMENTS:
                parser.error(
                    f"unknown experiment {name!r}; available: {', '.join(EXPERIMENTS)}"
                )
            return _call(EXPERIMENTS[name], rest)
        if name not in REPRODUCTIONS:
            parser.error(f"unknown table {name!r}; available: {', '.join(REPRODUCTIONS)}")
        return _call(REPRODUCTIONS[name], rest)
    parser.error(
        f"unknown command {command!r}; available: demo, train, evaluate, reproduce, "
        "experiment, bench"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
