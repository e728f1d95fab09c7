"""Training throughput: environment steps per second *including learning*.

By default: the first algorithm of :data:`pain_jax.learn.train.ALGORITHMS` (``ppo``) on
Coin Game at every ``--batch-sizes`` (``num_envs`` 64, 256, 1024, 4096), every algorithm
at ``--all-algorithms-at`` (1024; pass every batch size for the full grid), one row
with pain noise and one row on the sampled IPD (``--extra-batch`` 1024).  For each
(env, batch, network) group this builds the :class:`~pain_jax.learn.train.Trainer` of
a :class:`~pain_jax.learn.config.TrainConfig` and times three jitted functions of the
same shapes (``E`` copies, ``T`` steps per update, ``n`` updates per call):

* (a) ``env``: the environment alone, a ``lax.scan`` of ``n`` x ``T`` steps of the
  trainer's own :class:`~pain_jax.pain.PainWrapper` env (``jax.vmap(env.step)``, one
  key per copy per step) with uniformly random actions; every output of each step
  (observations, rewards, done flags and the info dict) is stored as the rollout
  stores them and summed after each block of ``T`` steps, so none is optimised away;
* (b) ``rollout``: ``n`` rollouts of :func:`pain_jax.learn.rollout.rollout` with fixed
  networks (environment + policy forward + sampling + the critic's look at final
  observations), every :class:`~pain_jax.learn.rollout.Transitions` leaf summed;
* (c) ``update``: ``trainer.run(runner, n, env_params)``, the full training loop
  (rollout, bootstrap value, GAE, the algorithm's advantages, epochs of minibatch
  gradient steps).

The env params (pain params included) are traced arguments, so the pain modes of a
group share its compiles (as in a sweep).  Each function is compiled first (compile
time reported), every call is made once to warm up, then the calls of a group are
made ``repeats`` times, interleaved so that a burst of load from other processes hits
every variant alike.  Throughput is ``n * E * T / seconds`` (one env step moves every
agent of one copy), from the minimum and the median time.  The shares of the update's
time come from the minimum times: environment ``a / c``, acting network
``(b - a) / c``, learning ``(c - b) / c`` (GAE and the advantages included).  They add
up to 1 by construction; on a noisy machine one may come out slightly negative.

Usage::

    pain-jax bench train_throughput                  # default run, writes results/
    pain-jax bench train_throughput --quick          # one tiny group, no files
    python benchmarks/train_throughput.py --batch-sizes 256 --network gru
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import pain_jax as pj
from pain_jax.experiments.report import fresh_stem
from pain_jax.learn.config import TrainConfig
from pain_jax.learn.rollout import rollout
from pain_jax.learn.train import ALGORITHMS, Trainer

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_BATCHES = (64, 256, 1024, 4096)
DEFAULT_NOTES = (
    "The CPU may have been shared with other jobs: compare the load averages before "
    "and after with the core count; min times are the more reliable figures."
)


# ----- the three timed functions ----------------------------------------------------
# Each is ``run(runner, env_params)`` with the env params (pain params included) traced,
# as in a sweep: pain modes share one compile (the mode is traced; an unbatched mode
# runs only its own branch of the pain layers' ``lax.switch``).


def _checksum(tree) -> jax.Array:
    """float32 ``()``: the sum of every leaf (keeps every output of a step live)."""
    return sum(jnp.sum(x, dtype=jnp.float32) for x in jax.tree.leaves(tree))


def env_fn(trainer: Trainer, num_updates: int):
    """(a) ``-> (env_state, checksum)``: ``num_updates`` blocks of ``T`` steps of
    ``trainer.env`` alone, int32 uniform random actions ``(E, A)``."""
    env, num_steps = trainer.env, trainer.config.num_steps
    num_agents, num_actions = trainer.num_agents, env.num_actions
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def run(runner, params):
        num_envs = runner.rollout.obs.shape[0]

        def one_step(env_state, step_key):
            key_act, key_env = jax.random.split(step_key)
            shape = (num_envs, num_agents)
            actions = jax.random.randint(key_act, shape, 0, num_actions, jnp.int32)
            keys = jax.random.split(key_env, num_envs)
            obs, env_state, reward, done, info = step(keys, env_state, actions, params)
            return env_state, (obs, reward, done, info)

        def block(carry, _):
            env_state, key, acc = carry
            key, key_block = jax.random.split(key)
            keys = jax.random.split(key_block, num_steps)
            env_state, out = jax.lax.scan(one_step, env_state, keys)
            return (env_state, key, acc + _checksum(out)), None

        carry = (runner.rollout.env_state, runner.key, jnp.zeros((), jnp.float32))
        (env_state, _, acc), _ = jax.lax.scan(block, carry, None, length=num_updates)
        return env_state, acc

    return run


def rollout_fn(trainer: Trainer, num_updates: int):
    """(b) ``-> (rollout_state, checksum)``: ``num_updates`` rollouts of ``T`` steps
    with the runner's (fixed) networks."""
    env, policy, num_steps = trainer.env, trainer.policy, trainer.config.num_steps

    def run(runner, params):
        def block(carry, _):
            state, key, acc = carry
            key, k = jax.random.split(key)
            state, tr = rollout(
                env, policy, runner.variables, state, k, params, num_steps
            )
            return (state, key, acc + _checksum(tr)), None

        carry = (runner.rollout, runner.key, jnp.zeros((), jnp.float32))
        (state, _, acc), _ = jax.lax.scan(block, carry, None, length=num_updates)
        return state, acc

    return run


def update_fn(trainer: Trainer, num_updates: int):
    """(c) ``-> (runner, metrics)``: ``trainer.run(runner, num_updates, env_params)``."""
    return lambda runner, params: trainer.run(runner, num_updates, params)


# ----- timing -----------------------------------------------------------------------
def updates_per_call(num_envs: int, num_steps: int, steps_per_call: int) -> int:
    """Updates per timed call: about ``steps_per_call`` env steps, at least one."""
    return max(1, round(steps_per_call / (num_envs * num_steps)))


def _stats(times, steps) -> dict:
    best, med = min(times), statistics.median(times)
    return {
        "times_s": [round(t, 5) for t in times],
        "min_s": best,
        "median_s": med,
        "steps_per_s_min_time": steps / best,
        "steps_per_s_median_time": steps / med,
    }


def shares(a: float, b: float, c: float) -> dict:
    """Shares of the update time ``c``: env ``a / c``, acting ``(b - a) / c``,
    learning ``(c - b) / c``."""
    return {"env": a / c, "acting": (b - a) / c, "learning": (c - b) / c}


def bench_group(base: TrainConfig, variants, repeats: int, steps_per_call: int):
    """Rows for one (env, num_envs, network) group.

    ``variants``: ``(algorithm, pain_mode)`` pairs.  (a) and (b) are compiled once
    (they do not depend on the learner) and (c) once per algorithm; every pain mode
    reuses them with its own traced env params.  All calls are interleaved.
    """
    n = updates_per_call(base.num_envs, base.num_steps, steps_per_call)
    steps = n * base.num_envs * base.num_steps
    algorithms = list(dict.fromkeys(alg for alg, _ in variants))
    modes = list(dict.fromkeys(mode for _, mode in variants))
    trainers = {alg: Trainer(base.replace(algorithm=alg)) for alg in algorithms}
    first = trainers[algorithms[0]]
    params = {m: Trainer(base.replace(pain_mode=m)).env_params for m in modes}
    runner = jax.jit(first.init)(jax.random.key(0), params[modes[0]])
    fns = {"env": env_fn(first, n), "rollout": rollout_fn(first, n)}
    fns |= {alg: update_fn(t, n) for alg, t in trainers.items()}
    compiled, compile_s = {}, {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        compiled[name] = jax.jit(fn).lower(runner, params[modes[0]]).compile()
        compile_s[name] = time.perf_counter() - t0
    calls = [(f, m) for m in modes for f in ("env", "rollout")] + list(variants)
    for f, m in calls:  # warm-up (allocations, caches)
        jax.block_until_ready(compiled[f](runner, params[m]))
    times = {call: [] for call in calls}
    for _ in range(repeats):
        for f, m in calls:
            t0 = time.perf_counter()
            jax.block_until_ready(compiled[f](runner, params[m]))
            times[(f, m)].append(time.perf_counter() - t0)
    rows = []
    for alg, mode in variants:
        row = {
            "algorithm": alg,
            "env": base.env,
            "pain_mode": mode,
            "network": base.network,
            "hidden": list(base.hidden),
            "pain_layers": "none" if base.pain_layers == () else "all",
            "num_envs": base.num_envs,
            "num_steps": base.num_steps,
            "num_epochs": base.num_epochs,
            "num_minibatches": base.num_minibatches,
            "updates_per_call": n,
            "env_steps_per_call": steps,
            "repeats": repeats,
            "compile_s": {
                "update": compile_s[alg],
                "rollout": compile_s["rollout"],
                "env": compile_s["env"],
            },
            "update": _stats(times[(alg, mode)], steps),
            "rollout": _stats(times[("rollout", mode)], steps),
            "env_only": _stats(times[("env", mode)], steps),
        }
        row["shares"] = shares(
            row["env_only"]["min_s"], row["rollout"]["min_s"], row["update"]["min_s"]
        )
        rows.append(row)
        s, u = row["shares"], row["update"]
        print(
            f"{alg:>6s} {base.env:>9s} pain {mode:>5s} {base.network} "
            f"E {base.num_envs:>5d}: {u['steps_per_s_min_time']:>10.0f} env-steps/s "
            f"(min t; median t {u['steps_per_s_median_time']:.0f}), compile "
            f"{compile_s[alg]:.1f} s; env {s['env']:.0%} acting {s['acting']:.0%} "
            f"learning {s['learning']:.0%}",
            flush=True,
        )
    return rows


# ----- hardware and results ---------------------------------------------------------
def hardware_tag() -> str:
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"cpu-{os.cpu_count()}core"
    return f"{dev.platform}-{dev.device_kind}".replace(" ", "_").lower()


def detect_device() -> str:
    """``jax.devices()`` kinds and, on CPU, the processor name and core count."""
    devs = jax.devices()
    kinds = sorted({d.device_kind for d in devs})
    text = f"{len(devs)} x {', '.join(kinds)} ({devs[0].platform})"
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{text}; host CPU {cpu or 'unknown'}, {os.cpu_count()} cores"


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"# Training throughput, {meta['date']} ({meta['hardware']})",
        "",
        f"{meta['device']}; jax {meta['jax']}. Dense widths {meta['hidden']}, pain "
        f"layers: {meta['pain_layers']} hidden layers (env params, pain included, "
        "traced). "
        f"T = {meta['num_steps']} steps per update, "
        f"{meta['num_epochs']} epochs x {meta['num_minibatches']} minibatches, "
        f"{meta['repeats']} interleaved timed calls per function after a warm-up. "
        "Env-steps/s = updates x E x T / time, learning included (one env step moves "
        "every agent of one copy). Shares of the update time (from min times): env = "
        "env alone / update, acting = (rollout - env alone) / update, learning = "
        "(update - rollout) / update (GAE and advantages included).",
        "",
        f"Load average (1, 5, 15 min) before {meta['load_avg_before']}, after "
        f"{meta['load_avg_after']}; total wall time {meta['wall_s']:.0f} s"
        + (f" (process CPU time {meta['cpu_s']:.0f} s)." if "cpu_s" in meta else "."),
        "",
        "| algorithm | env | pain | net | E | updates/call | k env-steps/s (min t) "
        "| (median t) | env alone k/s | rollout k/s | compile s (update) | env share "
        "| acting share | learning share |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s, u = r["shares"], r["update"]
        lines.append(
            f"| {r['algorithm']} | {r['env']} | {r['pain_mode']} | {r['network']} "
            f"| {r['num_envs']} | {r['updates_per_call']} "
            f"| {u['steps_per_s_min_time'] / 1e3:.1f} "
            f"| {u['steps_per_s_median_time'] / 1e3:.1f} "
            f"| {r['env_only']['steps_per_s_min_time'] / 1e3:.0f} "
            f"| {r['rollout']['steps_per_s_min_time'] / 1e3:.0f} "
            f"| {r['compile_s']['update']:.1f} | {s['env']:.0%} | {s['acting']:.0%} "
            f"| {s['learning']:.0%} |"
        )
    lines += ["", f"Notes: {meta['notes']}", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="pain-jax bench train_throughput", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    p.add_argument("--env", default="coin_game")
    p.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=list(DEFAULT_BATCHES),
        help="num_envs at which the first algorithm runs",
    )
    p.add_argument(
        "--all-algorithms-at",
        type=int,
        nargs="*",
        default=[1024],
        help="num_envs at which every algorithm runs (all --batch-sizes: full grid)",
    )
    p.add_argument("--network", choices=("mlp", "cnn", "gru"), default="mlp")
    p.add_argument("--hidden", type=int, nargs="+", default=list(d.hidden))
    p.add_argument("--pain-mode", choices=("off", "noise", "dropout"), default="off")
    p.add_argument(
        "--pain-layers",
        choices=("all", "none"),
        default="all",
        help="pain layers on every hidden layer (the TrainConfig default) or none "
        "(a plain network: pain modes then act on the dynamics only)",
    )
    p.add_argument(
        "--extra-pain",
        nargs="*",
        default=["noise"],
        help="pain modes of extra rows (first algorithm, --env, --extra-batch)",
    )
    p.add_argument(
        "--extra-envs",
        nargs="*",
        default=["ipd"],
        help="envs of extra rows (first algorithm, --extra-batch; mlp where --network "
        "cnn meets flat observations)",
    )
    p.add_argument("--extra-batch", type=int, default=1024)
    p.add_argument("--num-steps", type=int, default=d.num_steps)
    p.add_argument("--num-epochs", type=int, default=d.num_epochs)
    p.add_argument("--num-minibatches", type=int, default=d.num_minibatches)
    p.add_argument(
        "--steps-per-call",
        type=int,
        default=51200,
        help="env steps per timed call (sets the updates per call, at least 1)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device-note", default=None, help="hardware name (default: detect)")
    p.add_argument("--notes", default=DEFAULT_NOTES, help="stored with the results")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--quick", action="store_true", help="tiny smoke run, no files")
    return p


def groups(args) -> list[tuple[TrainConfig, list[tuple[str, str]]]]:
    """``(base config, [(algorithm, pain_mode), ...])`` per timed group (one env,
    batch size and network each), in the order they run."""
    base = TrainConfig(
        env=args.env,
        network=args.network,
        hidden=tuple(args.hidden),
        pain_layers=None if args.pain_layers == "all" else (),
        num_steps=args.num_steps,
        num_epochs=args.num_epochs,
        num_minibatches=args.num_minibatches,
    )
    first, off = args.algorithms[0], args.pain_mode
    out: dict[tuple, tuple[TrainConfig, list]] = {}

    def add(cfg: TrainConfig, alg: str, mode: str):
        entry = out.setdefault((cfg.env, cfg.num_envs, cfg.network), (cfg, []))
        if (alg, mode) not in entry[1]:
            entry[1].append((alg, mode))

    for e in sorted(set(args.batch_sizes) | set(args.all_algorithms_at)):
        algs = args.algorithms if e in args.all_algorithms_at else [first]
        for alg in algs:
            add(base.replace(num_envs=e), alg, off)
    extra = base.replace(num_envs=args.extra_batch)
    for mode in args.extra_pain:
        add(extra, first, mode)
    for name in args.extra_envs:
        cfg = extra.replace(env=name)
        if cfg.network == "cnn" and len(pj.make(name)[0].obs_shape) != 3:
            cfg = cfg.replace(network="mlp")
        add(cfg, first, off)
    return list(out.values())


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.algorithms, args.batch_sizes, args.all_algorithms_at = (
            args.algorithms[:1],
            [8],
            [],
        )
        args.extra_batch, args.extra_envs, args.num_steps = 8, [], 4
        args.num_minibatches, args.num_epochs = 2, 1
        args.steps_per_call, args.repeats, args.no_write = 32, 1, True
    load_before, t0, cpu0 = _load(), time.perf_counter(), time.process_time()
    rows = []
    for cfg, variants in groups(args):
        rows += bench_group(cfg, variants, args.repeats, args.steps_per_call)
    meta = {
        "date": dt.date.today().isoformat(),
        "hardware": hardware_tag(),
        "device": args.device_note or detect_device(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "num_steps": args.num_steps,
        "hidden": list(args.hidden),
        "pain_layers": args.pain_layers,
        "num_epochs": args.num_epochs,
        "num_minibatches": args.num_minibatches,
        "repeats": args.repeats,
        "steps_per_call": args.steps_per_call,
        "pain_params_traced": True,
        "load_avg_before": load_before,
        "load_avg_after": _load(),
        "wall_s": time.perf_counter() - t0,
        # CPU time of this process, all threads: on a shared machine a better guide
        # than wall time to how long the run takes alone
        "cpu_s": time.process_time() - cpu0,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "notes": args.notes,
    }
    result = {"meta": meta, "rows": rows}
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = args.out / f"train_throughput_{meta['date']}_{meta['hardware']}"
        stem = fresh_stem(stem)
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        stem.with_suffix(".md").write_text(markdown(meta, rows))
        print(f"wrote {stem}.json and {stem}.md")
    return result


if __name__ == "__main__":
    main()
