"""``pain-jax evaluate``: a Coin Game league of fixed bots and trained checkpoints.

    pain-jax evaluate --out runs/league
    pain-jax evaluate --run aa=runs/aa_coin --run ppo=runs/ppo_coin@1 --out runs/league

Every pair of participants (each with itself too) plays ``--envs`` copies of the game
for ``--episodes`` whole episodes in one jitted, vmapped ``lax.scan``; the first named
participant sits in seat 0.  Participants: the bots of :mod:`pain_jax.learn.bots`
(``--bots``, default all) and trained runs (``--run NAME=PATH[@SLOT]``: the folder
written by ``pain-jax train``, restored from its latest checkpoint; seed 0's
parameters of agent slot ``SLOT``, default 0).  A run acts under its own pain
injection (its config's pain mode); each seat's pain follows the pain dynamics of its
participant's config (bots: the default dynamics, mode off), driven by its reward.
All runs must share the environment options and pain observation flags (they set the
game and the observations); bots read any of them.

Table columns, per pair: per-step return of each seat; own-coin rate (own-colour
pickups / all pickups) overall and of each seat; mean pain each seat acted under.
Written to ``--out``: ``league.json`` and ``league.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

import pain_jax as pj
from pain_jax.experiments.report import environment_info, markdown_table, write_json
from pain_jax.learn.bots import BOTS, bot_by_index
from pain_jax.learn.config import TrainConfig
from pain_jax.pain.wrapper import PainWrapper


@dataclass(frozen=True)
class Participant:
    """One league entrant.

    Attributes:
      name: shown in the table.
      params: the traced part: bot index int32 ``()`` or one agent's variables.
      pain: ``PainParams`` (scalars): the dynamics of this entrant's pain and, for a
        run, the injection its network acts under.
      policy: the run's :class:`~pain_jax.learn.rollout.Policy`, ``None`` for a bot.
      kind: compile-cache key: every bot shares ``"bot"`` (the bot index is traced),
        every run of one config shares ``"run:<config>"`` (its variables are traced).
      config: the run's :class:`TrainConfig` (``None`` for a bot).
    """

    name: str
    params: Any
    pain: Any
    policy: Any = None
    kind: str = "bot"
    config: TrainConfig | None = None

    @property
    def hidden(self) -> int:
        return 0 if self.policy is None else self.policy.hidden

    def act(self, params, pain, key, obs, level, carry, reset):
        """``(carry (E, H), action int32 (E,))`` for one seat's rows ``obs (E, *O)``
        (``params``, ``pain``: this participant's, passed traced)."""
        if self.policy is None:
            keys = jax.random.split(key, obs.shape[0])
            act = jax.vmap(lambda k, o: bot_by_index(params, k, o, num_agents=2))
            return carry, act(keys, obs)
        carry, acted = self.policy.act(params, carry, obs, reset, level, key, pain)
        return carry, acted.action


def bot(name: str) -> Participant:
    """The participant of bot ``name`` (a key of :data:`BOTS`)."""
    if name not in BOTS:
        raise ValueError(f"unknown bot {name!r}; available: {', '.join(BOTS)}")
    pain = TrainConfig().pain_params()  # default dynamics, mode off
    return Participant(name, jnp.int32(list(BOTS).index(name)), pain)


def load_config(path: Path) -> TrainConfig:
    """The :class:`TrainConfig` recorded in a run folder's ``config.json``."""
    record = json.loads((Path(path) / "config.json").read_text())
    fields = dict(record["config"])
    for name in ("hidden", "conv", "pain_layers", "agent_algorithms"):  # JSON: lists
        if isinstance(fields.get(name), list):
            fields[name] = tuple(fields[name])
    return TrainConfig(**fields)


#: The config fields that shape a run's network (and so its compiled play); pain
#: dynamics, injection strength and mode are traced, training options irrelevant.
_NETWORK_FIELDS = (
    "env",
    "env_options",
    "network",
    "hidden",
    "conv",
    "gru_hidden",
    "activation",
    "pain_layers",
    "pain_logits",
    "pain_critic",
    "observe_own_pain",
    "observe_others_pain",
)


def _network_kind(config: TrainConfig) -> str:
    fields = {k: getattr(config, k) for k in _NETWORK_FIELDS}
    return "run:" + json.dumps(fields, sort_keys=True, default=list)


_RESTORED: dict[tuple, Any] = {}  # the last restored run (seat after seat)


def run_seeds(name: str, path: Path, slot: int = 0) -> list[Participant]:
    """One participant per trained seed of a run folder (latest checkpoint), agent
    ``slot``; named ``NAME`` for seed 0 and ``NAME#s`` for seed ``s``.  The run is
    restored once."""
    from pain_jax.learn.host import restore_runner

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"--run {name}: {path} is not a training run folder")
    record = json.loads((path / "config.json").read_text())
    config = load_config(path)
    saved = tuple(sorted(p.name for p in (path / "checkpoints").glob("*")))
    stamp = (str(path.resolve()), saved)
    if stamp not in _RESTORED:  # both seats of a run: one restore
        _RESTORED.clear()
        _RESTORED[stamp] = restore_runner(
            path, config, record["num_seeds"], record["seed"]
        )
    runner, trainer = _RESTORED[stamp]
    if not 0 <= slot < trainer.num_agents:
        raise ValueError(
            f"--run {name}: slot {slot} out of range [0, {trainer.num_agents})"
        )
    kind = _network_kind(config)  # runs with one network shape share one compile
    return [
        Participant(
            name if s == 0 else f"{name}#{s}",
            jax.tree.map(lambda x, s=s: x[s, slot], runner.variables),
            config.pain_params(),
            trainer.policy,
            kind,
            config,
        )
        for s in range(record["num_seeds"])
    ]


def run(name: str, path: Path, slot: int = 0) -> Participant:
    """The participant of a trained run: seed 0, agent ``slot``, latest checkpoint."""
    return run_seeds(name, path, slot)[0]


def match_env(participants: list[Participant], grid_size: int, max_steps: int):
    """``(env, base_params)``: the Coin Game the league plays, wrapped for pain.

    With runs: their environment and pain observation flags (all must agree); else a
    ``grid_size`` Coin Game of ``max_steps`` steps without pain features."""
    configs = [p.config for p in participants if p.config is not None]
    if not configs:
        base, params = pj.make("coin_game", grid_size=grid_size, max_steps=max_steps)
        return PainWrapper(base), params
    first = configs[0]
    keys = ("env", "env_options", "observe_own_pain", "observe_others_pain")
    for c in configs[1:]:
        for k in keys:
            if getattr(c, k) != getattr(first, k):
                raise ValueError(
                    f"runs disagree on {k}: {getattr(first, k)!r} vs {getattr(c, k)!r}"
                )
    if first.env != "coin_game":
        raise ValueError(f"the league plays coin_game, the runs trained on {first.env!r}")
    base, params = pj.make(first.env, **first.env_options)
    if base.num_agents != 2:
        raise ValueError(f"the league seats 2 players, the runs had {base.num_agents}")
    env = PainWrapper(
        base, observe_own=first.observe_own_pain, observe_others=first.observe_others_pain
    )
    return env, params


def make_play(env, side0: Participant, side1: Participant, num_envs: int, num_steps: int):
    """``play(params0, params1, pain0, pain1, base_params, key) -> stats``, jitted:
    ``num_envs`` fresh games of ``num_steps`` steps (whole episodes) of ``env`` (a
    :class:`PainWrapper`; ``base_params`` its inner params; seat ``i`` feels pain by
    the dynamics ``pain_i``).  Stats (float32): ``return`` ``(A,)`` per step,
    ``return_se`` ``(A,)`` its standard error over copies, ``pain`` ``(A,)`` mean level
    acted under, ``pickups`` / ``own_pickups`` ``(A,)`` totals over finished
    episodes."""
    reset_all = jax.vmap(env.reset, in_axes=(0, None))
    step_all = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def play(params0, params1, pain0, pain1, base_params, key):
        pain = jax.tree.map(lambda a, b: jnp.stack([a, b]), pain0, pain1)
        env_params = env.wrap_params(base_params, pain)
        key_reset, key_loop = jax.random.split(key)
        obs, state = reset_all(jax.random.split(key_reset, num_envs), env_params)
        carry0 = jnp.zeros((num_envs, side0.hidden), jnp.float32)
        carry1 = jnp.zeros((num_envs, side1.hidden), jnp.float32)
        init = (obs, state, carry0, carry1, jnp.ones((num_envs,), bool))

        def one(c, k):
            obs, state, carry0, carry1, reset = c
            k0, k1, k_env = jax.random.split(k, 3)
            level = jax.vmap(env.pain_level)(state)  # (E, A)
            carry0, a0 = side0.act(
                params0, pain0, k0, obs[:, 0], level[:, 0], carry0, reset
            )
            carry1, a1 = side1.act(
                params1, pain1, k1, obs[:, 1], level[:, 1], carry1, reset
            )
            actions = jnp.stack([a0, a1], 1).astype(jnp.int32)
            obs, state, reward, done, info = step_all(
                jax.random.split(k_env, num_envs), state, actions, env_params
            )
            ep, d = info["episode"], done[:, None]
            counts = jnp.stack(
                [jnp.where(d, ep["pickups"], 0), jnp.where(d, ep["own_pickups"], 0)]
            ).sum(1)  # (2, A)
            return (obs, state, carry0, carry1, done), (reward, level, counts)

        _, (reward, level, counts) = jax.lax.scan(
            one, init, jax.random.split(key_loop, num_steps)
        )
        per_env = reward.mean(0)  # (E, A)
        return {
            "return": per_env.mean(0),
            "return_se": per_env.std(0) / jnp.sqrt(num_envs),
            "pain": level.mean((0, 1)),
            "pickups": counts[:, 0].sum(0).astype(jnp.float32),
            "own_pickups": counts[:, 1].sum(0).astype(jnp.float32),
        }

    return jax.jit(play)


# Compiled plays, kept across leagues (tests, notebooks): every bot pair of one
# environment layout and size shares one compile.
_PLAYS: dict[tuple, Any] = {}


def _env_layout(env: PainWrapper) -> tuple:
    base = env.env
    return (
        type(base).__name__,
        base.grid_size,
        base.num_agents,
        base.centred,
        base.flat,
        base.checked,
        env.reset_on_done,
        env.observe_own,
        env.observe_others,
    )


def league(
    participants: list[Participant],
    num_envs: int = 256,
    episodes: int = 3,
    seed: int = 0,
    grid_size: int = 3,
    max_steps: int = 50,
    pairs: list[tuple[int, int]] | None = None,
) -> list[dict[str, Any]]:
    """Play every pair ``i <= j`` (``i`` in seat 0), or the index ``pairs`` given
    (seat 0, seat 1); one row of results per pair.  Pair ``(i, j)`` plays with key
    ``i * n + j`` of ``seed``, whichever other pairs are played."""
    env, base_params = match_env(participants, grid_size, max_steps)
    num_steps = episodes * int(base_params.max_steps)
    rows = []
    n = len(participants)
    keys = jax.random.split(jax.random.key(seed), n * n)
    if pairs is None:
        pairs = [(i, j) for i in range(n) for j in range(i, n)]
    for i, j in pairs:
        p, q = participants[i], participants[j]
        name = (p.kind, q.kind, _env_layout(env), num_envs, num_steps)
        if name not in _PLAYS:
            _PLAYS[name] = make_play(env, p, q, num_envs, num_steps)
        stats = _PLAYS[name](
            p.params, q.params, p.pain, q.pain, base_params, keys[i * n + j]
        )
        rows.append(_row(p.name, q.name, jax.device_get(stats)))
    return rows


def _rate(own, total) -> float:
    return float(own / total) if total > 0 else float("nan")


def _row(name0: str, name1: str, s: dict) -> dict[str, Any]:
    return {
        "seat0": name0,
        "seat1": name1,
        "return0": float(s["return"][0]),
        "return1": float(s["return"][1]),
        "return0_se": float(s["return_se"][0]),
        "return1_se": float(s["return_se"][1]),
        "own_coin_rate": _rate(s["own_pickups"].sum(), s["pickups"].sum()),
        "own_coin0": _rate(s["own_pickups"][0], s["pickups"][0]),
        "own_coin1": _rate(s["own_pickups"][1], s["pickups"][1]),
        "pain0": float(s["pain"][0]),
        "pain1": float(s["pain"][1]),
        "pickups": float(s["pickups"].sum()),
    }


COLUMNS = [
    ("seat0", "seat 0"),
    ("seat1", "seat 1"),
    ("return0", "return/step 0"),
    ("return1", "return/step 1"),
    ("own_coin_rate", "own-coin rate"),
    ("own_coin0", "own-coin 0"),
    ("own_coin1", "own-coin 1"),
    ("pain0", "pain 0"),
    ("pain1", "pain 1"),
]


def table(rows: list[dict[str, Any]]) -> str:
    """The league as a markdown table."""
    return markdown_table(
        [h for _, h in COLUMNS], [[r[k] for k, _ in COLUMNS] for r in rows]
    )


def _parse_run(text: str) -> tuple[str, Path, int]:
    if "=" not in text:
        raise ValueError(f"--run wants NAME=PATH[@SLOT], got {text!r}")
    name, path = text.split("=", 1)
    slot = 0
    head, _, tail = path.rpartition("@")
    if head and tail.isdigit():
        path, slot = head, int(tail)
    return name, Path(path), slot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pain-jax evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--bots", default=",".join(BOTS), help="comma-separated bot names"
    )
    parser.add_argument("--run", action="append", default=[], metavar="NAME=PATH[@SLOT]")
    parser.add_argument("--envs", type=int, default=256, help="game copies per pair")
    parser.add_argument("--episodes", type=int, default=3, help="episodes per copy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid-size", type=int, default=3, help="bots-only leagues")
    parser.add_argument("--max-steps", type=int, default=50, help="bots-only leagues")
    parser.add_argument("--out", type=Path, default=Path("runs/league"))
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        if args.envs < 1 or args.episodes < 1:
            raise ValueError("--envs and --episodes must be >= 1")
        names = [b for b in args.bots.split(",") if b]
        participants = [bot(b) for b in names]
        participants += [run(*_parse_run(r)) for r in args.run]
        if not participants:
            raise ValueError("no participants: give --bots and/or --run")
        rows = league(
            participants,
            args.envs,
            args.episodes,
            args.seed,
            args.grid_size,
            args.max_steps,
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"pain-jax evaluate: {e}", file=sys.stderr)
        return 2
    md = table(rows)
    settings = {
        "envs": args.envs,
        "episodes": args.episodes,
        "seed": args.seed,
        "participants": [
            {
                "name": p.name,
                "kind": p.kind,
                "config": None if p.config is None else dataclasses.asdict(p.config),
            }
            for p in participants
        ],
    }
    write_json(
        args.out / "league.json",
        {"settings": settings, "rows": rows, "environment": environment_info()},
    )
    (args.out / "league.md").write_text(
        f"# Coin Game league\n\n{args.envs} copies x {args.episodes} episodes per pair, "
        f"seed {args.seed}; seat 0 is the first named.  Returns are per step; "
        "own-coin rate is own-colour pickups / all pickups; pain is the mean level "
        "each seat acted under.\n\n" + md + "\n"
    )
    print(md)
    print(f"wrote {args.out}/league.json, league.md")
    return 0


__all__ = ["Participant", "bot", "league", "load_config", "main", "run", "table"]
