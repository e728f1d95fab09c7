"""Markdown tables and plots of ``pain-jax reproduce lola`` (see ``lola.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pain_jax.envs.payoffs import STATE_NAMES
from pain_jax.experiments import lola_rows as lr
from pain_jax.experiments.report import markdown_table

OUTCOME = {"ipd": ("tft", "TFT %"), "imp": ("nash", "Nash %")}


def _ms(stats: dict) -> str:
    return f"{stats['mean']:.2f} ({stats['std']:.2f})"


def _pub_pair(value, i: int):
    return value[i] if isinstance(value, tuple | list) else value


def _main_cells(res: dict) -> list:
    row = lr.Row(**res["row"])
    pub = row.published or {}
    field, _ = OUTCOME[row.game]
    players = res["player"]
    if "pooled" in res:
        pooled = res["pooled"]
        reward = _ms(pooled["reward"])
        d_mean = d_std = "—"
        if "mean" in pub:
            d_mean = f"{pooled['reward']['mean'] - pub['mean']:+.2f}"
        if "std" in pub:
            d_std = f"{pooled['reward']['std'] - pub['std']:+.2f}"
        outcome = f"{pooled[field]:.1f}"
    else:
        reward = " / ".join(_ms(p["reward"]) for p in players)
        d_std = "—"
        d_mean = "—"
        if "mean" in pub:
            d_mean = " / ".join(
                f"{p['reward']['mean'] - _pub_pair(pub['mean'], i):+.2f}"
                for i, p in enumerate(players)
            )
        outcome = " / ".join(f"{p[field]:.1f}" for p in players)
    if "mean" in pub:
        means = pub["mean"] if isinstance(pub["mean"], tuple | list) else [pub["mean"]]
        published = " / ".join(f"{m:.2f}" for m in means)
        if "std" in pub:
            published += f" ({pub['std']:.2f})"
    else:
        published = "—"
    pub_out = f"{pub[field]:.1f}" if field in pub else "—"
    d_out = "—"
    if field in pub and "pooled" in res:
        d_out = f"{res['pooled'][field] - pub[field]:+.1f}"
    return [
        row.name, f"{row.lr:g}", row.scale, reward, published, d_mean, d_std,
        outcome, pub_out, d_out,
    ]  # fmt: skip


def main_tables(rows: list[dict]) -> str:
    parts = []
    for game in ("ipd", "imp"):
        sel = [r for r in rows if r["row"]["game"] == game]
        if not sel:
            continue
        _, outcome = OUTCOME[game]
        headers = [
            "row (P1-P2)", "delta=eta", "climbs", "reward/step mean (std)",
            "published", "diff mean", "diff std", outcome, f"published {outcome}",
            "diff",
        ]  # fmt: skip
        parts.append(f"### {game.upper()}\n")
        parts.append(markdown_table(headers, [_main_cells(r) for r in sel]))
        parts.append("")
    return "\n".join(parts)


def tandem_table(rows: list[dict]) -> str:
    headers = ["learner (self-play)", "lr", "final x+y mean (std)", "% near x+y=1",
               "loss per player mean (std)"]  # fmt: skip
    cells = [
        [r["learner"], f"{r['lr']:g}", _ms(r["x_plus_y"]),
         f"{r['near_fixed_points']:.1f}", _ms(r["loss"])]
        for r in rows
    ]  # fmt: skip
    return markdown_table(headers, cells)


def pain_table(rows: list[dict]) -> str:
    headers = [
        "game", "row (P1-P2)", "pain", "acting reward P1 / P2", "coop P1 / P2",
        "TFT or Nash % P1 / P2", "final pain P1 / P2", "P1 - P2 reward",
    ]  # fmt: skip
    cells = []
    for r in rows:
        row = lr.Row(**r["row"])
        field, _ = OUTCOME[row.game]
        p = r["player"]
        mode = {0: "off", 1: "noise", 2: "dropout"}[r["pain_mode"]]
        cells.append([
            row.game, row.name, mode,
            " / ".join(f"{x['acting_reward']['mean']:.2f}" for x in p),
            " / ".join(f"{x['coop']:.2f}" for x in p),
            " / ".join(f"{x[field]:.1f}" for x in p),
            " / ".join(f"{x['pain']:.2f}" for x in p),
            f"{p[0]['acting_reward']['mean'] - p[1]['acting_reward']['mean']:+.2f}",
        ])  # fmt: skip
    return markdown_table(headers, cells)


def markdown_report(result: dict) -> str:
    cfg = result["config"]
    lines = [
        "# LOLA exact-gradient tables (reproduced)",
        "",
        f"{cfg['seeds']} seeds per row, {cfg['updates']} updates, initial logits "
        f"~ N(0, 1), base seed {cfg['seed']}, pain in the main table: {cfg['pain']}. "
        "Reward = average reward per step (1 - gamma) V of the final policies; mean "
        "(std) over seeds, pooled over both players for self-play rows, "
        "'P1 / P2' otherwise. 'climbs': V = gradient ascent on the discounted value "
        "(as the original LOLA code), per-step = on (1 - gamma) V. Published: "
        "Foerster et al. 2018 (shared/docs/references.md).",
        "",
        f"- Tit-for-tat: {result['definitions']['tft']}.",
        f"- Mixed Nash: {result['definitions']['nash']}.",
        "- Known gap: the published tit-for-tat shares (NL 20.8 %, LOLA 81.0 %) are "
        "not reproduced under any of about 30 tested readings of the final policies "
        "(strict: NL ~0 %, LOLA ~58 %), although the means and stds match. About 94 % "
        "of naive learners end below 0.5 in all five states, so no per-agent reading "
        "of the final policies can give 20.8 %. The released exact-gradient code has "
        "the same dynamics as ours and contains no TFT computation.",
        "",
        main_tables(result["main"]),
        "## Tandem game (SOS keeps the stable fixed points x + y = 1)",
        "",
        "L1 = (x+y)^2 - 2x, L2 = (x+y)^2 - 2y; x, y ~ N(0, 1); "
        f"{cfg['tandem_updates']} updates; '% near' = |x + y - 1| < 0.05.",
        "",
        tandem_table(result["tandem"]),
        "",
    ]
    if result["pain"]:
        lines += [
            "## How pain changes the outcomes (delta = eta = 1)",
            "",
            "Pain acts on the memory-one policy: at every learning iteration each "
            "player's 5 logits get noise of std sigma * p (sigma "
            f"{cfg['pain_sigma']}), p driven by that player's per-step reward "
            "(threshold: IPD -1.5, IMP 0 unless set; scale "
            f"{cfg['pain_scale']}). 'acting reward' is the reward under the "
            "perturbed policies at the last iteration; coop = discount-weighted "
            "share of rounds the player cooperates (unperturbed policy).",
            "",
            pain_table(result["pain"]),
            "",
        ]
    lines.append(f"Total time: {result['seconds']:.1f} s.")
    return "\n".join(lines) + "\n"


def plot_policies(rows: list[dict], path: Path) -> Path | None:
    """Seed-mean P(C | state) of player 1 over training: NL-NL vs LOLA-LOLA."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pick = {}
    for r in rows:
        row = lr.Row(**r["row"])
        if row.lr == 1.0 and row.scale == "V" and row.name in ("NL-NL", "LOLA-LOLA"):
            pick[(row.game, row.name)] = np.asarray(r["mean_probs"])[:, 0]  # (T, 5)
    if not pick:
        return None
    games = sorted({g for g, _ in pick})
    fig, axes = plt.subplots(len(games), 2, figsize=(10, 3.2 * len(games)), squeeze=False)
    for i, game in enumerate(games):
        for j, name in enumerate(("NL-NL", "LOLA-LOLA")):
            ax = axes[i, j]
            probs = pick.get((game, name))
            if probs is None:
                ax.axis("off")
                continue
            for s, label in enumerate(STATE_NAMES):
                ax.plot(probs[:, s], label=f"P(C | {label})")
            ax.set_title(f"{game.upper()} {name}: player 1, mean over seeds")
            ax.set_xlabel("update")
            ax.set_ylim(-0.02, 1.02)
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_tandem(rows: list[dict], path: Path) -> Path | None:
    """Seed-mean x + y over training per learner on the tandem game."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in rows:
        ax.plot(r["mean_x_plus_y"], label=r["learner"])
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="fixed points x+y=1")
    ax.set_xlabel("update")
    ax.set_ylabel("mean x + y")
    ax.set_title("Tandem game, self-play")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
