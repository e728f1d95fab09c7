"""LOLA on the exact games: the published table reproduced on a few hundred seeds,
seeds decide everything (C19), pain in the exact games, and the CLI program."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pain_jax.envs.payoffs import STRATEGIES
from pain_jax.experiments import lola
from pain_jax.learn import exact_games as eg
from pain_jax.learn import exact_learners as el
from pain_jax.learn.exact_play import play
from pain_jax.pain import dynamics as pd

NL = el.Learner(kind="naive")
LOLA = el.Learner(kind="lola")
SEEDS, UPDATES = 300, 200
# every small test uses the same static shape so they share one compilation
S, T = 8, 30


@pytest.fixture(scope="module")
def table():
    """NL-NL and LOLA-LOLA, delta = eta = 1, 300 seeds x 200 updates, IPD and IMP."""
    key = jax.random.key(2018)
    out = {}
    for game in ("ipd", "imp"):
        g = eg.matrix_game(game)
        for name, learner in (("NL", NL), ("LOLA", LOLA)):
            out[game, name] = jax.device_get(
                play(learner, learner, g, key, SEEDS, UPDATES)
            )
    return out


def test_reproduce__ipd_means_within_0_1_of_published(table):
    nl = table["ipd", "NL"][1]["reward"]
    lo = table["ipd", "LOLA"][1]["reward"]
    assert abs(nl.mean() - (-1.98)) < 0.1, nl.mean()
    assert abs(lo.mean() - (-1.06)) < 0.1, lo.mean()
    # LOLA agents reach tit-for-tat far more often than naive learners
    tft = {
        n: eg.is_tit_for_tat(table["ipd", n][1]["probs"]).mean() for n in ("NL", "LOLA")
    }
    assert tft["LOLA"] > 0.4 and tft["NL"] < 0.05, tft


def test_reproduce__imp_lola_std_much_smaller_than_naive(table):
    nl = table["imp", "NL"][1]["reward"]
    lo = table["imp", "LOLA"][1]["reward"]
    assert abs(nl.mean()) < 0.05 and abs(lo.mean()) < 0.05  # zero-sum, symmetric
    assert lo.std() < 0.25 * nl.std(), (lo.std(), nl.std())  # published 0.02 vs 0.37
    # LOLA's policies sit much closer to the mixed Nash (all P = 0.5)
    dist = {n: np.abs(table["imp", n][1]["probs"] - 0.5).mean() for n in ("NL", "LOLA")}
    assert dist["LOLA"] < 0.5 * dist["NL"], dist


def test_play__history_shapes_and_first_entry_is_the_start(table):
    hist, final = table["ipd", "NL"]
    assert hist["theta"].shape == (SEEDS, UPDATES, 2, 5)
    assert hist["probs"].shape == (SEEDS, UPDATES, 2, 5)
    assert hist["reward"].shape == hist["acting_reward"].shape == (SEEDS, UPDATES, 2)
    assert final["theta"].shape == (SEEDS, 2, 5)
    np.testing.assert_array_equal(hist["pain"], 0.0)  # pain off
    np.testing.assert_array_equal(hist["reward"], hist["acting_reward"])


def test_seeds__same_seed_bit_identical_other_seed_differs():
    g = eg.matrix_game("ipd")
    a = play(NL, NL, g, jax.random.key(5), S, T)[1]["theta"]
    b = play(NL, NL, g, jax.random.key(5), S, T)[1]["theta"]
    c = play(NL, NL, g, jax.random.key(6), S, T)[1]["theta"]
    np.testing.assert_array_equal(a, b)
    assert not np.any(np.all(np.asarray(a) == np.asarray(c), axis=(1, 2)))
    # every seed of a run is its own run, and the first seeds of a bigger run are the
    # same runs
    assert len({tuple(np.asarray(x).ravel()) for x in a}) == S
    small = play(NL, NL, g, jax.random.key(5), S // 2, T)[1]["theta"]
    np.testing.assert_allclose(small, a[: S // 2], rtol=1e-6, atol=1e-6)


def test_play__jit_once_for_new_keys_and_step_sizes():
    g = eg.matrix_game("imp")
    play(NL, NL, g, jax.random.key(0), S, T)
    size = play._cache_size()
    slow = el.Learner(kind="naive", lr=0.5, opp_lr=0.5)
    play(slow, slow, g, jax.random.key(1), S, T)
    play(NL, NL, eg.matrix_game("ipd"), jax.random.key(2), S, T)
    assert play._cache_size() == size


def test_fixed_strategy__naive_learner_learns_to_cooperate_with_tit_for_tat():
    g = eg.matrix_game("ipd")
    tft = el.fixed_learner(STRATEGIES["tit_for_tat"])
    hist, final = play(NL, tft, g, jax.random.key(3), S, T)
    np.testing.assert_array_equal(
        final["theta"][:, 1], np.broadcast_to(tft.strategy, (S, 5))
    )
    # always cooperating is the best response to TFT at gamma 0.96 (-1 vs -1.92)
    np.testing.assert_allclose(final["reward"][:, 0], -1.0, atol=0.05)


PAIN_OFF = pd.PainParams(mode=pd.OFF, threshold=-1.5)
PAIN_ON = pd.PainParams(mode=pd.NOISE, threshold=-1.5, sigma=1.0)


def test_pain__off_or_zero_sigma_is_bit_identical_to_no_pain():
    g = eg.matrix_game("ipd")
    key = jax.random.key(9)
    base = play(NL, NL, g, key, S, T)[0]["theta"]
    off = play(NL, NL, g, key, S, T, pain=PAIN_OFF)[0]["theta"]
    zero = play(NL, NL, g, key, S, T, pain=PAIN_ON.replace(sigma=0.0))[0]["theta"]
    np.testing.assert_array_equal(base, off)
    np.testing.assert_array_equal(base, zero)


def test_pain__mutual_defection_hurts_and_noise_changes_the_play():
    g = eg.matrix_game("ipd")
    key = jax.random.key(9)
    hist, _ = play(NL, NL, g, key, S, T, pain=PAIN_ON)
    clean = play(NL, NL, g, key, S, T)[0]
    pain = np.asarray(hist["pain"])
    # naive learners slide to mutual defection (-2 < -1.5): pain ~ 0.5 at the end
    assert np.all(pain[:, -1] > 0.3)
    # pain noise is drawn per player: the two players' acting rewards differ from
    # the unperturbed ones, and the trajectory departs from the pain-free one
    assert np.any(np.asarray(hist["acting_reward"]) != np.asarray(hist["reward"]))
    assert not np.allclose(hist["theta"][:, -1], clean["theta"][:, -1])
    # same key, same pain: bit-identical
    again = play(NL, NL, g, key, S, T, pain=PAIN_ON)[0]["theta"]
    np.testing.assert_array_equal(hist["theta"], again)


def test_pain__dropout_mode_zeroes_logits():
    from pain_jax.learn.exact_play import pain_perturb

    theta = jnp.arange(1.0, 2001.0)  # many logits to see the drop rate
    params = pd.PainParams(mode=pd.DROPOUT, dropout_rate=0.5, dropout_max=0.5)
    out = np.asarray(pain_perturb(jax.random.key(0), theta, jnp.float32(10.0), params))
    kept = out != 0
    # drop probability min(0.5 * 10, 0.5) = 0.5; survivors rescaled by 1 / (1 - 0.5)
    assert 0.45 < kept.mean() < 0.55
    np.testing.assert_allclose(out[kept], 2.0 * np.asarray(theta)[kept], rtol=1e-6)
    no_pain = pain_perturb(jax.random.key(0), theta, jnp.float32(0.0), params)
    np.testing.assert_array_equal(no_pain, theta)


def test_cli__small_run_writes_json_markdown_and_plots(tmp_path, capsys):
    argv = [
        "--seeds", str(S), "--updates", str(T), "--games", "ipd", "--rows", "NL-NL",
        "--tandem-learners", "NL", "--tandem-updates", str(T), "--out", str(tmp_path),
    ]  # fmt: skip
    assert lola.main(argv) == 0
    data = json.loads((tmp_path / "lola_table.json").read_text())
    assert {r["row"]["name"] for r in data["main"]} == {"NL-NL"}
    assert "tit-for-tat" in data["definitions"]["tft"]
    assert data["pain"] and {r["pain_mode"] for r in data["pain"]} == {0, 1}
    md = (tmp_path / "lola_table.md").read_text()
    assert "-1.98 (0.14)" in md  # the published number is printed beside ours
    assert (tmp_path / "lola_policies.png").stat().st_size > 1000
    assert (tmp_path / "tandem.png").stat().st_size > 1000
    assert "NL-NL" in capsys.readouterr().out
    # a second run resumes from the cached rows
    before = sorted(p.name for p in (tmp_path / "rows").iterdir())
    assert lola.main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "rows").iterdir()) == before
