"""Overhead of pain in the actor-critic forward pass.

For each network (MLP, CNN, GRU) at batch 4096 this times the jitted forward pass
(logits and value) of

* ``plain``: the network built without pain layers (the pain-off reference),
* ``off``: the network with pain on every hidden layer and the logits, mode ``OFF``,
* ``noise`` and ``dropout``: the same network in noise / dropout mode at pain 1,

and reports the ratios to ``plain`` (target: pain-on forward at most 1.15x).  Results
go to ``benchmarks/results/pain_overhead_<date>_<hardware>.{json,md}``.

Usage: ``python benchmarks/pain_overhead.py [--batch 4096] [--repeats 50]
[--out benchmarks/results] [--notes "..."]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from pain_jax.experiments.report import fresh_stem
from pain_jax.nets import ActorCriticCNN, ActorCriticGRU, ActorCriticMLP
from pain_jax.pain.dynamics import DROPOUT, NOISE, OFF, PainParams

PAINED = dict(pain_layers=None, pain_logits=True)
PLAIN = dict(pain_layers=(), pain_logits=False)
MODES = {"off": OFF, "noise": NOISE, "dropout": DROPOUT}


def networks(num_actions: int = 5):
    """name -> (factory(**pain), example obs (1, ...), recurrent).  Shapes of the
    2-agent 3x3 Coin Game (flat obs 36, grid obs 3x3x4)."""
    return {
        "mlp": (lambda **p: ActorCriticMLP(num_actions, (64, 64), **p), (36,), False),
        "cnn": (
            lambda **p: ActorCriticCNN(num_actions, (16, 16), (64,), **p),
            (3, 3, 4),
            False,
        ),
        "gru": (lambda **p: ActorCriticGRU(num_actions, 64, 64, (64,), **p), (36,), True),
    }


def forward_fn(model, recurrent: bool):
    """Jitted ``(variables, obs, level, params, key) -> (logits, value)``."""

    def forward(variables, obs, level, params, key):
        if recurrent:
            carry = jnp.zeros((obs.shape[0], model.hidden_size), jnp.float32)
            reset = jnp.zeros(obs.shape[0], bool)
            _, pi, value = model.apply(
                variables, carry, obs, reset, level, params, rngs={"pain": key}
            )
        else:
            pi, value = model.apply(variables, obs, level, params, rngs={"pain": key})
        return pi.logits, value

    return jax.jit(forward)


def time_interleaved(calls: dict, repeats: int) -> dict:
    """Time each ``name -> (fn, args)`` ``repeats`` times, interleaved round by round
    (so a burst of load from other processes hits every variant alike).

    Records wall time and the process's CPU time (all threads) per call.  On a
    shared machine CPU time is the steadier measure of the work done: time spent
    descheduled does not count (cache contention still does)."""
    for fn, args in calls.values():
        jax.block_until_ready(fn(*args))  # compile and warm up
        jax.block_until_ready(fn(*args))
    wall = {name: [] for name in calls}
    cpu = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (fn, args) in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            jax.block_until_ready(fn(*args))
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {
        name: {
            "median_ms": 1e3 * statistics.median(wall[name]),
            "min_ms": 1e3 * min(wall[name]),
            "cpu_median_ms": 1e3 * statistics.median(cpu[name]),
            "cpu_p10_ms": 1e3 * statistics.quantiles(cpu[name], n=10)[0],
        }
        for name in calls
    }


def run(batch: int, repeats: int, nets=None) -> dict:
    key = jax.random.key(0)
    out = {}
    for name, (factory, obs_shape, recurrent) in networks().items():
        if nets and name not in nets:
            continue
        pained, plain = factory(**PAINED), factory(**PLAIN)
        obs = jax.random.uniform(key, (batch, *obs_shape))
        level = jnp.ones(batch, jnp.float32)
        params = PainParams(mode=jnp.int32(OFF))
        init_args = (obs, level, params)
        if recurrent:
            carry = pained.initial_carry(batch)
            init_args = (carry, obs, jnp.zeros(batch, bool), level, params)
        variables = jax.jit(pained.init)({"params": key, "pain": key}, *init_args)
        calls = {
            "plain": (forward_fn(plain, recurrent), (variables, obs, level, params, key))
        }
        fn = forward_fn(pained, recurrent)  # one compile serves all modes
        for mode_name, mode in MODES.items():
            p = params.replace(mode=jnp.int32(mode))
            calls[mode_name] = (fn, (variables, obs, level, p, key))
        rows = time_interleaved(calls, repeats)
        for r in rows.values():
            r["ratio_to_plain"] = r["median_ms"] / rows["plain"]["median_ms"]
            r["min_ratio_to_plain"] = r["min_ms"] / rows["plain"]["min_ms"]
            r["cpu_ratio_to_plain"] = r["cpu_median_ms"] / rows["plain"]["cpu_median_ms"]
            r["cpu_p10_ratio_to_plain"] = r["cpu_p10_ms"] / rows["plain"]["cpu_p10_ms"]
        out[name] = rows
        for stat in (
            "min_ratio_to_plain",
            "cpu_ratio_to_plain",
            "cpu_p10_ratio_to_plain",
        ):
            print(name, stat, {k: round(v[stat], 3) for k, v in rows.items()})
    return out


def hardware() -> str:
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"cpu-{os.cpu_count()}core"
    return f"{dev.platform}-{dev.device_kind}".replace(" ", "-").lower()


def write(results: dict, args, out_dir: Path) -> tuple[Path, Path]:
    date = datetime.date.today().isoformat()
    stem = fresh_stem(out_dir / f"pain_overhead_{date}_{hardware()}")
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": date,
        "hardware": hardware(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "batch": args.batch,
        "repeats": args.repeats,
        "target": "noise and dropout forward <= 1.15x plain forward",
        "notes": args.notes,
    }
    Path(f"{stem}.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2)
    )
    lines = [
        f"# Pain overhead, forward pass at batch {args.batch} ({date}, {hardware()})",
        "",
        f"jax {jax.__version__}; {args.repeats} interleaved calls per variant: wall "
        "time (median, min) and process CPU time (median, 10th percentile); ratio to "
        "the network without pain layers (`plain`). `off`: pain layers present, mode "
        "OFF. Target: noise and dropout <= 1.15x.",
        "",
        "| network | stat | plain ms | off ms (x) | noise ms (x) | dropout ms (x) |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        stats = (
            ("median", "median_ms", "ratio_to_plain"),
            ("min", "min_ms", "min_ratio_to_plain"),
            ("cpu median", "cpu_median_ms", "cpu_ratio_to_plain"),
            ("cpu p10", "cpu_p10_ms", "cpu_p10_ratio_to_plain"),
        )
        for stat, field, ratio in stats:
            cells = [f"{rows['plain'][field]:.3f}"] + [
                f"{rows[m][field]:.3f} ({rows[m][ratio]:.2f}x)" for m in MODES
            ]
            lines.append(f"| {name} | {stat} | " + " | ".join(cells) + " |")
    lines += ["", f"Notes: {args.notes}", ""]
    Path(f"{stem}.md").write_text("\n".join(lines))
    return Path(f"{stem}.json"), Path(f"{stem}.md")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--notes", default="")
    parser.add_argument("--nets", nargs="*", help="subset of mlp, cnn, gru")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    results = run(args.batch, args.repeats, args.nets)
    if not args.no_write:
        for path in write(results, args, args.out):
            print("wrote", path)
    return results


if __name__ == "__main__":
    main()
