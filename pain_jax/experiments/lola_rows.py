"""Rows of the LOLA exact-gradient tables: what each row runs and how it is summarised.

A row is a pair of learners on one exact game with one step size (delta = eta).  Its
summary is computed from the *final* policies after all updates: average reward per
step (mean and standard deviation over seeds, per player and pooled over both players
for self-play), the share of runs ending at tit-for-tat (IPD) or at the mixed Nash
(IMP), the cooperation rate, and the seed-mean trajectory of ``P(C | state)``.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from pain_jax.learn import exact_games as eg
from pain_jax.learn import exact_learners as el
from pain_jax.learn import exact_play as ep
from pain_jax.pain import dynamics as pd

#: Learner short names used in row names -> (kind, steps).
SHORT = {
    "NL": ("naive", 1),
    "LOLA": ("lola", 1),
    "LA1": ("lookahead", 1),
    "LA3": ("lookahead", 3),
    "HOLA2": ("hola", 2),
    "SOS": ("sos", 1),
}

#: Published figures (``shared/docs/references.md``; Foerster et al. 2018, exact
#: gradients).  ``mean``/``std`` are per player: one number for self-play (both
#: players), a pair (player 1, player 2) otherwise; ``tft`` in percent.
PUBLISHED = {
    ("ipd", "NL-NL", 1.0, "V"): {"mean": -1.98, "std": 0.14, "tft": 20.8},
    ("ipd", "LOLA-LOLA", 1.0, "V"): {"mean": -1.06, "std": 0.19, "tft": 81.0},
    ("ipd", "LOLA-NL", 0.5, "V"): {"mean": (-1.28, -1.54)},
    ("imp", "NL-NL", 1.0, "V"): {"mean": 0.0, "std": 0.37},
    ("imp", "LOLA-LOLA", 1.0, "V"): {"mean": 0.0, "std": 0.02},
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One table row.  ``scale``: "V" climbs the discounted value (as the original
    LOLA code did), "per-step" climbs ``(1 - gamma) V``."""

    game: str
    name: str  # e.g. "LOLA-NL": player 1's learner, then player 2's
    lr: float = 1.0
    scale: str = "V"

    @property
    def learners(self) -> tuple[el.Learner, el.Learner]:
        out = []
        for short in self.name.split("-"):
            kind, steps = SHORT[short]
            out.append(el.Learner(kind=kind, steps=steps, lr=self.lr, opp_lr=self.lr))
        return out[0], out[1]

    @property
    def self_play(self) -> bool:
        a, b = self.name.split("-")
        return a == b

    @property
    def key(self) -> str:
        return f"{self.game}_{self.name}_lr{self.lr:g}_{self.scale}"

    @property
    def published(self) -> dict | None:
        return PUBLISHED.get((self.game, self.name, self.lr, self.scale))


def main_rows(games=("ipd", "imp")) -> list[Row]:
    """The reproduced rows (both step sizes) plus look-ahead / higher-order rows and
    the value-scale investigation rows."""
    rows = []
    for game in games:
        for lr in (1.0, 0.5):
            rows += [Row(game, n, lr) for n in ("NL-NL", "LOLA-LOLA", "LOLA-NL")]
        rows += [Row(game, n, 1.0) for n in ("LA1-LA1", "LA3-LA3", "HOLA2-HOLA2")]
        rows += [Row(game, "HOLA2-LOLA", 1.0)]
        rows += [Row(game, n, 1.0, "per-step") for n in ("NL-NL", "LOLA-LOLA")]
    return rows


def game_of(row: Row):
    gamma = {"ipd": 0.96, "imp": 0.9}.get(row.game)
    scale = 1.0 if row.scale == "V" else 1.0 - gamma
    return eg.matrix_game(row.game, value_scale=scale)


def pain_params(game: str, mode: int, sigma: float, scale: float, threshold=None):
    """Pain for the exact games: reward = the player's per-step reward at each
    learning iteration.  Default thresholds: IPD -1.5 (mutual defection, -2, hurts;
    mutual cooperation, -1, does not), IMP 0 (losing hurts)."""
    if threshold is None:
        threshold = {"ipd": -1.5, "imp": 0.0}.get(game, 0.0)
    return pd.PainParams(
        threshold=float(threshold), scale=float(scale), sigma=float(sigma), mode=int(mode)
    )


def run_row(row: Row, key, num_seeds: int, num_updates: int, pain=None) -> dict:
    """Play the row and summarise it (plain Python numbers and lists)."""
    l1, l2 = row.learners
    hist, final = ep.play(l1, l2, game_of(row), key, num_seeds, num_updates, pain=pain)
    return summarise(row, jax.device_get(hist), jax.device_get(final))


def _stats(x: np.ndarray) -> dict:
    return {"mean": float(np.mean(x)), "std": float(np.std(x))}


def summarise(row: Row, hist: dict, final: dict) -> dict:
    reward = np.asarray(final["reward"])  # (S, 2)
    probs = np.asarray(final["probs"])  # (S, 2, 5)
    acting = np.asarray(hist["acting_reward"])[:, -1]  # (S, 2), last iteration
    out = {
        "row": dataclasses.asdict(row),
        "num_seeds": int(reward.shape[0]),
        "player": [
            {
                "reward": _stats(reward[:, i]),
                "acting_reward": _stats(acting[:, i]),
                "coop": float(np.mean(final["coop"][:, i])),
                "tft": float(np.mean(eg.is_tit_for_tat(probs[:, i]))) * 100,
                "nash": float(np.mean(eg.is_mixed_nash(probs[:, i]))) * 100,
                "pain": float(np.mean(hist["pain"][:, -1, i])),
                "nan_runs": int(np.sum(~np.isfinite(reward[:, i]))),
            }
            for i in range(2)
        ],
        # seed-mean P(C | state) of each player before every update: (T, 2, 5)
        "mean_probs": np.mean(hist["probs"], axis=0).round(4).tolist(),
    }
    if row.self_play:  # both players follow the same rule: pool them
        out["pooled"] = {
            "reward": _stats(reward),
            "tft": float(np.mean(eg.is_tit_for_tat(probs))) * 100,
            "nash": float(np.mean(eg.is_mixed_nash(probs))) * 100,
            "coop": float(np.mean(final["coop"])),
        }
    return out


def tandem_rows(lr: float = 0.1) -> list[tuple[str, el.Learner]]:
    """Self-play rows on the tandem game (Letcher et al. 2019)."""
    return [
        (name, el.Learner(kind=SHORT[name][0], steps=SHORT[name][1], lr=lr, opp_lr=lr))
        for name in ("NL", "LOLA", "LA1", "HOLA2", "SOS")
    ]


def run_tandem(name, learner, key, num_seeds: int, num_updates: int, tol=0.05) -> dict:
    """Self-play on the tandem game: where does ``x + y`` end (fixed points: 1)?"""
    hist, final = ep.play(learner, learner, eg.TandemGame(), key, num_seeds, num_updates)
    s = np.asarray(final["x_plus_y"])
    loss = np.asarray(final["loss"])
    return {
        "learner": name,
        "lr": float(learner.lr),
        "x_plus_y": _stats(s),
        "near_fixed_points": float(np.mean(np.abs(s - 1.0) < tol)) * 100,
        "loss": _stats(loss),
        "mean_x_plus_y": np.mean(np.asarray(hist["x_plus_y"]), 0).round(4).tolist(),
        "tolerance": tol,
    }


def check_finite(summary: dict) -> None:
    """Raise if any run of the row ended with a non-finite reward."""
    bad = [p["nan_runs"] for p in summary["player"]]
    if any(bad):
        raise FloatingPointError(f"non-finite rewards in {summary['row']}: {bad}")
