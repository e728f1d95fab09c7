"""``pain-jax train``: train agents on an environment, with pain on or off.

    pain-jax train --preset aa_coin --out runs/aa_coin --seeds 5
    pain-jax train --preset ppo_coin --config.pain-mode noise --config.num-updates 50

Every field of :class:`~pain_jax.learn.config.TrainConfig` is a typed flag
(``--config.FIELD``); ``--preset`` picks the starting values.  The run shows a
progress bar, writes ``metrics.jsonl``, orbax checkpoints and, at the end,
``summary.json``, ``summary.md`` and ``training.png`` to ``--out``.  Running the
same command again after an interruption resumes from the last checkpoint.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from pain_jax.learn.config import TrainConfig

_COIN = {"max_steps": 50}

#: name -> TrainConfig.  Small enough for a CPU; scale num_envs/num_updates on a GPU.
PRESETS: dict[str, TrainConfig] = {
    "ppo_coin": TrainConfig(env="coin_game", env_options=_COIN, algorithm="ppo"),
    "aa_coin": TrainConfig(env="coin_game", env_options=_COIN, algorithm="aa"),
    "aa_coin_noise": TrainConfig(
        env="coin_game", env_options=_COIN, algorithm="aa", pain_mode="noise"
    ),
    "aa_coin_dropout": TrainConfig(
        env="coin_game", env_options=_COIN, algorithm="aa", pain_mode="dropout"
    ),
    "lola_dice_coin": TrainConfig(
        env="coin_game", env_options=_COIN, algorithm="lola_dice", lola_lookahead=1
    ),
    "aa_vs_ppo_coin": TrainConfig(
        env="coin_game", env_options=_COIN, agent_algorithms=("aa", "ppo")
    ),
    "ppo_ipd": TrainConfig(env="ipd", env_options={"max_steps": 100}, algorithm="ppo"),
    "lola_dice_ipd": TrainConfig(
        env="ipd", env_options={"max_steps": 100}, algorithm="lola_dice"
    ),
    "aa_ipd": TrainConfig(env="ipd", env_options={"max_steps": 100}, algorithm="aa"),
    "tiny": TrainConfig(
        env="coin_game",
        env_options=_COIN,
        algorithm="aa",
        pain_mode="noise",
        num_envs=16,
        num_steps=16,
        num_updates=4,
        num_minibatches=2,
        num_epochs=1,
        hidden=(16,),
    ),
}


@dataclass(frozen=True)
class HostOptions:
    """Options of the host loop (not part of the training maths)."""

    out: Path = Path("runs/train")
    """output folder (reused on resume)"""
    seeds: int = 1
    """number of seeds trained in parallel (vmapped)"""
    seed: int = 0
    """base seed; seed i uses key split i of it"""
    chunk: int = 10
    """updates per jitted chunk (progress, metrics and checkpoints between chunks)"""
    overwrite: bool = False
    """start afresh even if --out holds another run"""
    progress: bool = True
    """show a progress bar"""


def _preset_from_argv(argv: list[str]) -> tuple[str, list[str]]:
    """Take ``--preset NAME`` out of ``argv`` (tyro then parses the rest)."""
    rest, name = [], "aa_coin"
    it = iter(argv)
    for arg in it:
        if arg == "--preset":
            name = next(it, "")
        elif arg.startswith("--preset="):
            name = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if name not in PRESETS:
        print(
            f"pain-jax train: unknown preset {name!r}; available: {', '.join(PRESETS)}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return name, rest


def _env_options_from_argv(argv: list[str]) -> tuple[dict, list[str]]:
    """Take every ``--env-option KEY=VALUE`` out of ``argv``: any option of the
    environment (``pj.make`` keyword), the value read as JSON when it parses
    (``4``, ``0.5``, ``true``, ``[[1, 2]]``), else as a string."""
    rest, options = [], {}
    it = iter(argv)
    for arg in it:
        if arg == "--env-option" or arg.startswith("--env-option="):
            text = next(it, "") if arg == "--env-option" else arg.split("=", 1)[1]
            key, sep, value = text.partition("=")
            if not sep or not key:
                print(
                    f"pain-jax train: --env-option wants KEY=VALUE, got {text!r}",
                    file=sys.stderr,
                )
                raise SystemExit(2)
            try:
                options[key.replace("-", "_")] = json.loads(value)
            except json.JSONDecodeError:
                options[key.replace("-", "_")] = value
        else:
            rest.append(arg)
    return options, rest


def main(argv: list[str] | None = None) -> int:
    import tyro

    argv = sys.argv[1:] if argv is None else list(argv)
    name, rest = _preset_from_argv(argv)
    extra, rest = _env_options_from_argv(rest)
    preset = PRESETS[name]
    if extra:
        preset = preset.replace(env_options={**preset.env_options, **extra})

    @dataclass(frozen=True)
    class Args:
        config: TrainConfig = preset
        host: HostOptions = HostOptions(out=Path("runs") / name)

    try:
        args = tyro.cli(
            Args,
            args=rest,
            prog="pain-jax train",
            description=__doc__.split("\n")[0]
            + f"\n\nPresets (--preset): {', '.join(PRESETS)}; this one: {name}.  "
            "Any environment option: --env-option KEY=VALUE (repeatable), e.g. "
            "--config.env pain_grid --env-option num_agents=4.",
        )
    except ValueError as e:  # TrainConfig rejected a value: name the field, no traceback
        print(f"pain-jax train: {e}", file=sys.stderr)
        return 2
    from pain_jax.learn.host import TrainingDiverged, train_run

    h = args.host
    print(
        f"preset {name}: {args.config.label} on {args.config.env}, "
        f"pain {args.config.pain_mode}, {h.seeds} seed(s) -> {h.out}"
    )
    try:
        summary = train_run(
            args.config,
            h.out,
            num_seeds=h.seeds,
            seed=h.seed,
            chunk=h.chunk,
            progress=h.progress,
            overwrite=h.overwrite,
        )
    except KeyboardInterrupt:
        again = "the same command" + (
            " without --host.overwrite (which would start over)" if h.overwrite else ""
        )
        saved = any((h.out / "checkpoints").glob("*"))
        print(
            f"\npain-jax train: interrupted; run {again} to resume "
            + (
                f"from the last checkpoint in {h.out}/checkpoints"
                if saved
                else "(no checkpoint was saved yet: it starts from update 0)"
            ),
            file=sys.stderr,
        )
        return 130
    except TrainingDiverged as e:
        print(f"pain-jax train: stopped: {e}", file=sys.stderr)
        return 3
    except ValueError as e:
        print(f"pain-jax train: {e}", file=sys.stderr)
        return 2
    print((h.out / "summary.md").read_text())
    print(f"wrote {h.out}/summary.json, summary.md, training.png, metrics.jsonl")
    del summary
    return 0


__all__ = ["PRESETS", "HostOptions", "main"]
