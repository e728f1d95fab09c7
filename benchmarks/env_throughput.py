"""Environment throughput: jitted ``lax.scan`` rollouts with uniformly random actions.

For every environment and batch size: one jitted function resets ``batch`` copies and
scans ``steps`` steps (auto-reset included).  Compile time is measured separately;
the run is timed ``repeats`` times and the median reported in environment steps per
second (``batch * steps / seconds``; one env step moves every agent of one copy).

Random actions and per-copy keys come from ``split_key`` / ``random_words`` (the
unrolled threefry of ``pain_jax.envs.api``, bit-identical to ``jax.random.split``), the
same scaffold for every environment, so the scaffold's cost does not hide the
environments' own.

Two pain_jax paths are measured (labels in the results):

* ``<env>`` : ``jax.vmap(env.step)`` with one split key per copy per step, the plain
  per-copy API (every copy's reset is computed each step and selected away);
* ``<env>/step_batch`` : ``pain_jax.envs.vector.step_batch``, one key per batch step
  and the auto-reset behind a batch-level ``lax.cond`` (only run when a copy is
  done).  Same contract per copy, different random draws.  Run for ``coin_game``
  by default (``--step-batch-envs``).

Observations are part of the work: each step folds the sum of all observation entries
(and the rewards and done flags) into the scan carry, so XLA cannot drop the
observation computation.  The JaxMARL anchor (``jaxmarl.make("coin_game")``, run when
``jaxmarl`` is importable) gets exactly the same treatment, and its runs are
interleaved with ours so that a shared, noisy CPU affects both alike.

Usage::

    python benchmarks/env_throughput.py                 # full run, writes results/
    python benchmarks/env_throughput.py --quick         # seconds-long smoke run
    PYTHONPATH=. /path/to/venv-with-jaxmarl/bin/python benchmarks/env_throughput.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import pain_jax as pj
from pain_jax.envs.api import random_words, split_key
from pain_jax.envs.vector import reset_batch, step_batch
from pain_jax.experiments.report import fresh_stem

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_BATCHES = (1, 64, 1024, 4096, 16384)
ANCHOR_BATCH = 4096


def pain_jax_rollout(name: str, batch: int, steps: int):
    """A jitted ``run(key) -> checksum`` doing ``steps`` batched steps of ``name``."""
    env, params = pj.make(name)
    n_agents, n_actions = env.num_agents, env.num_actions
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def run(key):
        k_reset, k_loop = jax.random.split(key)
        _, state = reset(jax.random.split(k_reset, batch), params)

        def body(carry, _):
            key, state, acc = carry
            key, k_act, k_step = split_key(key, 3)
            actions = random_actions(k_act, batch, n_agents, n_actions)
            obs, state, rew, done, _ = step(
                split_key(k_step, batch), state, actions, params
            )
            acc = acc + _checksum(obs, rew, done)
            return (key, state, acc), None

        carry = (k_loop, state, jnp.zeros((), jnp.float32))
        (_, _, acc), _ = jax.lax.scan(body, carry, None, length=steps)
        return acc

    return jax.jit(run)


def pain_jax_batch_rollout(name: str, batch: int, steps: int):
    """The same rollout through ``step_batch`` (one key per batch step)."""
    env, params = pj.make(name)
    n_agents, n_actions = env.num_agents, env.num_actions

    def run(key):
        k_reset, k_loop = jax.random.split(key)
        _, state = reset_batch(env, k_reset, params, batch)

        def body(carry, _):
            key, state, acc = carry
            key, k_act, k_step = split_key(key, 3)
            actions = random_actions(k_act, batch, n_agents, n_actions)
            obs, state, rew, done, _ = step_batch(env, k_step, state, actions, params)
            acc = acc + _checksum(obs, rew, done)
            return (key, state, acc), None

        carry = (k_loop, state, jnp.zeros((), jnp.float32))
        (_, _, acc), _ = jax.lax.scan(body, carry, None, length=steps)
        return acc

    return jax.jit(run)


def jaxmarl_rollout(batch: int, steps: int):
    """The same rollout for JaxMARL 0.2.0's Coin Game (dict-of-agents API)."""
    import jaxmarl

    env = jaxmarl.make("coin_game")
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
            obs = jnp.stack([obs[a] for a in agents], 1)
            rew = jnp.stack([rew[a] for a in agents], 1)
            acc = acc + _checksum(obs, rew, dones["__all__"])
            return (key, state, acc), None

        carry = (k_loop, state, jnp.zeros((), jnp.float32))
        (_, _, acc), _ = jax.lax.scan(body, carry, None, length=steps)
        return acc

    return jax.jit(run)


def random_actions(key, batch: int, n_agents: int, n_actions: int) -> jax.Array:
    """int32 ``(batch, n_agents)`` uniform actions (one 32-bit word each, bias below
    ``n_actions / 2**32``).  Shared by every environment benchmarked here."""
    words = random_words(key, batch * n_agents).reshape(batch, n_agents)
    return (words % n_actions).astype(jnp.int32)


def _checksum(obs, rew, done):
    """Sum of every observation entry, reward and done flag (keeps them all live)."""
    return (
        jnp.sum(obs, dtype=jnp.float32)
        + jnp.sum(rew, dtype=jnp.float32)
        + jnp.sum(done, dtype=jnp.float32)
    )


def _compile(fn, key):
    t0 = time.perf_counter()
    compiled = fn.lower(key).compile()
    return compiled, time.perf_counter() - t0


def _time_once(compiled, key) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(key))
    return time.perf_counter() - t0


def bench(cases, batches, steps, repeats):
    """``cases``: list of (label, make_fn(batch, steps)).  Runs are interleaved."""
    rows = []
    key = jax.random.key(0)
    for batch in batches:
        built = []
        for label, make in cases:
            compiled, compile_s = _compile(make(batch, steps), key)
            jax.block_until_ready(compiled(key))  # warm-up (allocations, caches)
            built.append((label, compiled, compile_s, []))
        for r in range(repeats):
            for _, compiled, _, times in built:
                times.append(_time_once(compiled, jax.random.fold_in(key, r + 1)))
        for label, _, compile_s, times in built:
            med = statistics.median(times)
            row = {
                "env": label,
                "batch": batch,
                "steps": steps,
                "repeats": repeats,
                "compile_s": round(compile_s, 3),
                "times_s": [round(t, 4) for t in times],
                "median_s": round(med, 4),
                "env_steps_per_s": batch * steps / med,
            }
            rows.append(row)
            print(
                f"{label:>22s} batch {batch:>6d}: {row['env_steps_per_s'] / 1e6:9.3f} "
                f"M env-steps/s (median {med:.3f} s, compile {compile_s:.2f} s)",
                flush=True,
            )
    return rows


PATHS = {  # label in the rows -> what the ratio table calls it
    "coin_game": "vmap(env.step)",
    "coin_game/step_batch": "step_batch",
}


def _ratios(rows):
    """``{path: {batch: pain_jax / JaxMARL coin_game throughput}}`` for each pain_jax
    Coin Game path measured."""
    theirs = {
        r["batch"]: r["env_steps_per_s"] for r in rows if r["env"] == "jaxmarl/coin_game"
    }
    out = {}
    for label, path in PATHS.items():
        ours = {r["batch"]: r["env_steps_per_s"] for r in rows if r["env"] == label}
        ratio = {b: ours[b] / theirs[b] for b in sorted(ours) if b in theirs}
        if ratio:
            out[path] = ratio
    return out


def _hardware_tag() -> str:
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"cpu-{os.cpu_count()}core"
    return f"{dev.platform}-{dev.device_kind.replace(' ', '_').lower()}"


def _markdown(meta, rows, ratios) -> str:
    lines = [
        f"# Environment throughput, {meta['date']} ({meta['hardware']})",
        "",
        f"jax {meta['jax']}, {meta['device']}, T = {meta['steps']} steps, median of "
        f"{meta['repeats']} runs; env-steps/s = batch x T / time (observations, rewards "
        "and done flags folded into the scan carry).",
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
        paths = list(ratios)
        lines += [
            "",
            "Ratios to JaxMARL's Coin Game (run as shipped: `jax.vmap(env.step)`): "
            "`coin_game` rows are pain_jax through `jax.vmap(env.step)`, "
            "`coin_game/step_batch` rows through `pain_jax.envs.vector.step_batch`.",
            "",
            "| batch | " + " | ".join(f"{p} / jaxmarl" for p in paths) + " |",
            "|---:|" + "---:|" * len(paths),
        ]
        for b in sorted({b for r in ratios.values() for b in r}):
            cells = [f"{ratios[p][b]:.1f}x" if b in ratios[p] else "-" for p in paths]
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=DEFAULT_BATCHES)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--envs", nargs="+", default=None, help="default: all registered")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--no-jaxmarl", action="store_true", help="skip the anchor")
    parser.add_argument(
        "--step-batch-envs",
        nargs="*",
        default=["coin_game"],
        help="envs also run through vector.step_batch (default: coin_game)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run, no files")
    parser.add_argument("--notes", default="", help="free text stored with the results")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.steps, args.repeats = [1, 64], 20, 1

    names = args.envs or pj.registered_names()
    cases = [(n, lambda b, t, n=n: pain_jax_rollout(n, b, t)) for n in names]
    cases += [
        (f"{n}/step_batch", lambda b, t, n=n: pain_jax_batch_rollout(n, b, t))
        for n in args.step_batch_envs
        if n in names
    ]
    try:
        import jaxmarl  # noqa: F401

        have_jaxmarl = not args.no_jaxmarl
    except ImportError:
        have_jaxmarl = False
    if have_jaxmarl and "coin_game" in names:
        cases.append(("jaxmarl/coin_game", jaxmarl_rollout))

    rows = bench(cases, args.batch_sizes, args.steps, args.repeats)
    ratios = _ratios(rows)
    for path, by_batch in ratios.items():
        for b, x in by_batch.items():
            print(f"coin_game via {path} vs JaxMARL coin_game at batch {b}: {x:.1f}x")
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
        "jaxmarl": have_jaxmarl,
        "load_avg_1min_at_end": load,
        "notes": args.notes or "none",
    }
    result = {"meta": meta, "rows": rows, "ratio_vs_jaxmarl": ratios}
    if not args.quick:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = args.out / f"env_throughput_{meta['date']}_{meta['hardware']}"
        stem = fresh_stem(stem)
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        stem.with_suffix(".md").write_text(_markdown(meta, rows, ratios))
        print(f"wrote {stem}.json and {stem}.md")
    return result


if __name__ == "__main__":
    main()
