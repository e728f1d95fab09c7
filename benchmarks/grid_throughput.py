"""Pain Grid throughput next to JaxMARL 0.2.0's 2-player STORM (``InTheGrid``).

For each configuration one jitted function resets ``batch`` copies and scans
``steps`` steps with uniformly random actions (auto-reset included); compile time is
measured apart, the run is timed ``repeats`` times and the median reported as
environment steps per second (``batch * steps / seconds``; one env step moves every
agent of one copy).  The sum of all observation entries, rewards and done flags is
folded into the scan carry so that XLA cannot drop any of it.

pain_jax paths: ``pain_grid/<A>a_<H>x<W>`` is ``jax.vmap(env.step)`` with one split key
per copy per step; ``.../step_batch`` is ``pain_jax.envs.vector.step_batch`` (one key
per batch step, the reset behind a batch-level ``cond``).  Random actions and keys
come from ``benchmarks/env_throughput.py``'s scaffold, shared by every case.

The anchor, ``jaxmarl.make("storm")`` (2 agents, 8x8 grid, 5x5 view; JaxMARL 0.2.0),
runs in a subprocess under the Python that has ``jaxmarl`` (``--jaxmarl-python``,
default ``/tmp/probe-venv/bin/python``; same jax version) with the same scaffold and
``jax.vmap(env.step)``, as shipped.  Processes cannot interleave their runs, so on a
shared CPU the ratio is noisier than within one process.

Usage::

    python benchmarks/grid_throughput.py            # full run, writes results/
    python benchmarks/grid_throughput.py --quick    # seconds-long smoke run, no files
    pain-jax bench grid_throughput
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp

from pain_jax.experiments.report import fresh_stem

sys.path.insert(0, str(Path(__file__).resolve().parent))
from env_throughput import _checksum, _hardware_tag, bench, random_actions  # noqa: E402

import pain_jax as pj  # noqa: E402
from pain_jax.envs.api import split_key  # noqa: E402
from pain_jax.envs.vector import reset_batch, step_batch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
#: (num_agents, grid size) measured by default; 8x8 is STORM's grid.
CONFIGS = ((2, 8), (4, 8), (8, 8), (4, 16))
ANCHOR = (2, 8)


def grid_rollout(num_agents: int, size: int, batch: int, steps: int, batched: bool):
    """A jitted ``run(key) -> checksum``: ``steps`` steps of ``batch`` Pain Grids."""
    env, params = pj.make("pain_grid", num_agents=num_agents, size=size)
    n_agents, n_actions = env.num_agents, env.num_actions
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def run(key):
        k_reset, k_loop = jax.random.split(key)
        if batched:
            _, state = reset_batch(env, k_reset, params, batch)
        else:
            _, state = reset(jax.random.split(k_reset, batch), params)

        def body(carry, _):
            key, state, acc = carry
            key, k_act, k_step = split_key(key, 3)
            actions = random_actions(k_act, batch, n_agents, n_actions)
            if batched:
                obs, state, rew, done, _ = step_batch(env, k_step, state, actions, params)
            else:
                keys = split_key(k_step, batch)
                obs, state, rew, done, _ = step(keys, state, actions, params)
            return (key, state, acc + _checksum(obs, rew, done)), None

        carry = (k_loop, state, jnp.zeros((), jnp.float32))
        (_, _, acc), _ = jax.lax.scan(body, carry, None, length=steps)
        return acc

    return jax.jit(run)


def storm_rollout(batch: int, steps: int):
    """The same rollout for JaxMARL 0.2.0's STORM (dict-of-agents API)."""
    import jaxmarl

    env = jaxmarl.make("storm")
    agents = list(env.agents)
    reset = jax.vmap(env.reset)
    step = jax.vmap(env.step)

    def run(key):
        k_reset, k_loop = jax.random.split(key)
        _, state = reset(jax.random.split(k_reset, batch))

        def body(carry, _):
            key, state, acc = carry
            key, k_act, k_step = split_key(key, 3)
            actions = random_actions(k_act, batch, len(agents), 5)
            act = {a: actions[:, i] for i, a in enumerate(agents)}
            obs, state, rew, dones, _ = step(split_key(k_step, batch), state, act)
            obs_sum = sum(jnp.sum(x, dtype=jnp.float32) for x in jax.tree.leaves(obs))
            rew = jnp.stack([rew[a] for a in agents], 1)
            acc = acc + obs_sum + _checksum(jnp.zeros(()), rew, dones["__all__"])
            return (key, state, acc), None

        carry = (k_loop, state, jnp.zeros((), jnp.float32))
        (_, _, acc), _ = jax.lax.scan(body, carry, None, length=steps)
        return acc

    return jax.jit(run)


def _run_storm(python: str, batches, steps: int, repeats: int, timeout: float) -> list:
    """Rows for STORM from a subprocess running this file with ``--storm-only``,
    given up after ``timeout`` seconds (JaxMARL 0.2.0's STORM took about 0.15 s per
    copy-step on a 2-core CPU: batch 4096 does not finish in useful time)."""
    if not Path(python).exists():
        print(f"no JaxMARL python at {python}: STORM anchor skipped", flush=True)
        return []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "storm.json"
        cmd = [python, __file__, "--storm-only", "--storm-json", str(out)]
        cmd += ["--batch-sizes", *map(str, batches), "--steps", str(steps)]
        cmd += ["--repeats", str(repeats)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        try:
            done = subprocess.run(cmd, env=env, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"STORM anchor timed out after {timeout:.0f} s: skipped", flush=True)
            return []
        if done.returncode != 0 or not out.exists():
            print("STORM subprocess failed: anchor skipped", flush=True)
            return []
        return json.loads(out.read_text())


def _ratios(rows):
    """``{label: {batch: ours / STORM}}`` for the 2-agent 8x8 paths."""
    theirs = {
        r["batch"]: r["env_steps_per_s"] for r in rows if r["env"] == "jaxmarl/storm"
    }
    base = f"pain_grid/{ANCHOR[0]}a_{ANCHOR[1]}x{ANCHOR[1]}"
    out = {}
    for label in (base, base + "/step_batch"):
        ours = {r["batch"]: r["env_steps_per_s"] for r in rows if r["env"] == label}
        ratio = {b: ours[b] / theirs[b] for b in sorted(ours) if b in theirs}
        if ratio:
            out[label] = ratio
    return out


def _markdown(meta, rows, ratios) -> str:
    lines = [
        f"# Pain Grid throughput, {meta['date']} ({meta['hardware']})",
        "",
        f"jax {meta['jax']}, {meta['device']}, T = {meta['steps']} steps, median of "
        f"{meta['repeats']} runs; env-steps/s = batch x T / time (observations, "
        "rewards and done flags folded into the scan carry).  Default Pain Grid "
        "(3 resources, 2 hazards, view radius 2) at A agents on an H x W grid.",
        "",
        f"Notes: {meta['notes']}",
        "",
        "| env | batch | M env-steps/s | median s | compile s |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['batch']} | {r['env_steps_per_s'] / 1e6:.3f} "
            f"| {r['median_s']:.4f} | {r['compile_s']:.2f} |"
        )
    if ratios:
        lines += [
            "",
            "Ratios to JaxMARL 0.2.0 STORM (`jax.vmap(env.step)`, 2 agents, 8x8):",
        ]
        lines += ["", "| pain_grid path | batch | ratio |", "|---|---:|---:|"]
        for label, by_batch in ratios.items():
            for b, x in by_batch.items():
                lines.append(f"| {label} | {b} | {x:.1f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4096])
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--jaxmarl-python", default="/tmp/probe-venv/bin/python")
    parser.add_argument("--no-jaxmarl", action="store_true", help="skip the anchor")
    parser.add_argument(
        "--storm-timeout", type=float, default=600.0, help="give up on STORM after s"
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run, no files")
    parser.add_argument("--notes", default="", help="free text stored with the results")
    parser.add_argument(
        "--tag", default="", help="suffix of the result file names (e.g. rerun)"
    )
    parser.add_argument(
        "--storm-rows",
        type=Path,
        help="reuse STORM rows written earlier by --storm-only --storm-json PATH",
    )
    parser.add_argument("--storm-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--storm-json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.steps, args.repeats = [64], 10, 1
    if args.storm_only:  # the subprocess side: STORM rows only
        rows = bench([("jaxmarl/storm", storm_rollout)], args.batch_sizes, args.steps, 3)
        args.storm_json.write_text(json.dumps(rows))
        return {"rows": rows}

    cases = []
    configs = CONFIGS[:1] if args.quick else CONFIGS
    for a, g in configs:
        label = f"pain_grid/{a}a_{g}x{g}"
        for batched in (False, True):
            cases.append(
                (
                    label + ("/step_batch" if batched else ""),
                    lambda b, t, a=a, g=g, bb=batched: grid_rollout(a, g, b, t, bb),
                )
            )
    rows = []
    if args.storm_rows:
        rows += json.loads(args.storm_rows.read_text())
    elif not args.no_jaxmarl:
        rows += _run_storm(
            args.jaxmarl_python,
            args.batch_sizes,
            args.steps,
            args.repeats,
            args.storm_timeout,
        )
    rows += bench(cases, args.batch_sizes, args.steps, args.repeats)
    ratios = _ratios(rows)
    for label, by_batch in ratios.items():
        for b, x in by_batch.items():
            print(f"{label} vs JaxMARL STORM at batch {b}: {x:.1f}x")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    meta = {
        "date": dt.date.today().isoformat(),
        "hardware": _hardware_tag(),
        "device": str(jax.devices()[0].device_kind),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "steps": args.steps,
        "repeats": args.repeats,
        "jaxmarl": any(r["env"] == "jaxmarl/storm" for r in rows),
        "load_avg_1min_at_end": load,
        "notes": args.notes or "none",
    }
    result = {"meta": meta, "rows": rows, "ratio_vs_storm": ratios}
    if not args.quick:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = args.out / f"grid_throughput_{meta['date']}_{meta['hardware']}"
        if args.tag:
            stem = stem.with_name(f"{stem.name}_{args.tag}")
        stem = fresh_stem(stem)
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        stem.with_suffix(".md").write_text(_markdown(meta, rows, ratios))
        print(f"wrote {stem}.json and {stem}.md")
    return result


if __name__ == "__main__":
    main()
