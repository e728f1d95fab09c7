"""Fixed Coin Game bots on hand-placed boards, and the bot league (``pain-jax
evaluate``).

Boards are ``G`` x ``G`` with row 0 on top; actions right, left, up, down, stay.
Observations are built by hand in the Coin Game's egocentric channel order (self,
other agent, own coin, other coin) and checked against the real environment's."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pain_jax as pj
from pain_jax.envs.coin_game import DOWN, LEFT, RIGHT, STAY, UP, CoinGameState
from pain_jax.experiments import evaluate
from pain_jax.learn import bots

KEY = jax.random.key(0)


def board(g, me, other, own=None, theirs=None):
    """Observation float32 (g, g, 4): self, other agent, own coin, other's coin."""
    obs = np.zeros((g, g, 4), np.float32)
    for c, pos in enumerate((me, other, own, theirs)):
        if pos is not None:
            obs[pos[0], pos[1], c] = 1.0
    return jnp.asarray(obs)


# One compile per bot for every hand-placed board (same shapes).
ACT = {name: jax.jit(f) for name, f in bots.BOTS.items()}
MANY = {  # the bot's action under 64 keys, to see every move a random choice can make
    name: jax.jit(jax.vmap(f, in_axes=(0, None))) for name, f in bots.BOTS.items()
}
KEYS = jax.random.split(KEY, 64)


def act(name, obs):
    return int(ACT[name](KEY, obs))


# ----- always cooperate ----------------------------------------------------------
@pytest.mark.parametrize(
    "me, own, theirs, expected",
    [
        ((1, 1), (1, 3), None, RIGHT),  # straight along the row
        ((0, 0), (0, 4), None, LEFT),  # wraps left through column 0
        ((0, 2), (4, 2), (2, 2), UP),  # wraps up; the other coin is the long way
        ((1, 1), (2, 2), (1, 2), DOWN),  # right would take the other's coin: down
    ],
)
def test_always_cooperate__walks_to_own_coin_around_others(me, own, theirs, expected):
    assert act("always_cooperate", board(5, me, (4, 4), own, theirs)) == expected


def test_always_cooperate__when_blocked_never_steps_on_others_coin():
    # Own coin two to the right, the other's coin in between: no shortening move is
    # allowed (left keeps the distance 2 on a 5-torus), so it picks among the rest.
    obs = board(5, (1, 1), (4, 4), own=(1, 3), theirs=(1, 2))
    moves = set(np.asarray(MANY["always_cooperate"](KEYS, obs)).tolist())
    assert moves == {LEFT, UP, DOWN, STAY}


def test_always_cooperate__without_own_coin_avoids_others_coin():
    obs = board(3, (0, 0), (2, 2), own=None, theirs=(0, 2))  # left wraps onto it
    moves = set(np.asarray(MANY["always_cooperate"](KEYS, obs)).tolist())
    assert moves == {RIGHT, UP, DOWN, STAY}


# ----- always defect and greedy ---------------------------------------------------
@pytest.mark.parametrize(
    "me, own, theirs, expected",
    [
        ((1, 1), (1, 2), (3, 1), DOWN),  # other's coin first, own one is nearer
        ((1, 0), (2, 2), (1, 4), LEFT),  # wraps left to the other's coin
        ((0, 1), (2, 3), (4, 1), UP),  # wraps up
        ((1, 1), (1, 3), None, RIGHT),  # only its own coin on the board
    ],
)
def test_always_defect__goes_for_others_coin_first(me, own, theirs, expected):
    assert act("always_defect", board(5, me, (3, 3), own, theirs)) == expected


@pytest.mark.parametrize(
    "me, own, theirs, expected",
    [
        ((1, 1), (1, 2), (3, 1), RIGHT),  # nearest is its own coin
        ((1, 1), (1, 3), (3, 1), RIGHT),  # tie at distance 2: own coin first
        ((0, 1), (2, 3), (4, 1), UP),  # the other's coin, one step up via the wrap
        ((2, 4), None, (2, 0), RIGHT),  # one coin, wrapping right
    ],
)
def test_greedy__goes_for_nearest_coin(me, own, theirs, expected):
    assert act("greedy", board(5, me, (3, 3), own, theirs)) == expected


def test_greedy__stays_without_coins():
    assert act("greedy", board(3, (0, 0), (1, 1))) == STAY


def test_random__uses_every_action_and_ignores_the_board():
    obs = board(3, (0, 0), (1, 1), own=(0, 1))
    keys = jax.random.split(KEY, 2000)
    actions = np.asarray(jax.vmap(bots.random_bot, in_axes=(0, None))(keys, obs))
    counts = np.bincount(actions, minlength=5)
    assert counts.sum() == 2000 and counts.min() > 300  # 400 expected each
    assert act("random", obs) == act("random", board(3, (2, 2), (1, 1), own=(2, 0)))


# ----- the real environment's observations -----------------------------------------
@pytest.fixture(scope="module")
def states():
    """256 random one-coin-per-agent boards on a 4x4 grid, and every view of them."""
    views = {}
    for name, opts in {
        "abs": {},
        "centred": {"centred": True},
        "flat": {"flat": True},
    }.items():
        env, params = pj.make("coin_game", grid_size=4, coin_per_agent=True, **opts)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(KEY, 256), params
        )
        views[name] = jax.vmap(env.get_obs)(state)  # (256, 2, ...)
    return state, views


def _all_bots(obs):
    """int32 (4 bots, 256 states, 2 agents) deterministic-key actions."""
    keys = jnp.broadcast_to(KEY, obs.shape[:2])
    return jnp.stack([jax.vmap(jax.vmap(f))(keys, obs) for f in bots.BOTS.values()])


def test_bots__same_move_from_absolute_centred_and_flat_views(states):
    _, views = states
    moves = jax.jit(_all_bots)
    absolute = np.asarray(moves(views["abs"]))
    # centred: the random draws see the same keys, so even they agree
    np.testing.assert_array_equal(absolute, moves(views["centred"]))
    # pain features appended by the PainWrapper (here 2 per agent) are ignored, as
    # channels of a grid and as features after a flat observation
    pain = jnp.full(views["abs"].shape[:-1] + (2,), 3.0)
    with_pain = jnp.concatenate([views["abs"], pain], -1)
    np.testing.assert_array_equal(absolute, moves(with_pain))
    flat_pain = jnp.concatenate([views["flat"], pain[..., 0, 0, :]], -1)
    np.testing.assert_array_equal(absolute, moves(flat_pain))


def test_bots__moves_shorten_distance_and_cooperator_avoids_others_coin(states):
    state, views = states
    state: CoinGameState
    actions = np.asarray(jax.jit(_all_bots)(views["abs"]))  # (4, N, 2)
    names = list(bots.BOTS)
    pos, coins = np.asarray(state.agent_pos), np.asarray(state.coin_pos)  # (N, 2, 2)
    moves = np.asarray(bots._MOVES)
    nxt = (pos[None] + moves[actions]) % 4  # (4, N, 2, 2)
    dist = lambda a, b: np.minimum(np.abs(a - b) % 4, 4 - np.abs(a - b) % 4).sum(-1)  # noqa: E731
    for i in range(2):
        own, other = coins[:, i], coins[:, 1 - i]
        coop = nxt[names.index("always_cooperate"), :, i]
        assert not (coop == other).all(-1).any()
        defect = nxt[names.index("always_defect"), :, i]
        np.testing.assert_array_equal(dist(defect, other), dist(pos[:, i], other) - 1)
        near = np.minimum(dist(pos[:, i], own), dist(pos[:, i], other))
        greedy = nxt[names.index("greedy"), :, i]
        np.testing.assert_array_equal(
            np.minimum(dist(greedy, own), dist(greedy, other)), near - 1
        )


# ----- the league ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def bot_league():
    players = [evaluate.bot(n) for n in ("always_cooperate", "always_defect", "random")]
    return {(r["seat0"], r["seat1"]): r for r in evaluate.league(players, 64, 1)}


def test_league__cooperators_only_take_their_own_coins(bot_league):
    row = bot_league["always_cooperate", "always_cooperate"]
    assert row["pickups"] > 0
    assert row["own_coin_rate"] == 1.0
    assert row["pain0"] == row["pain1"] == 0.0  # rewards never negative: no pain


def test_league__defector_exploits_cooperator(bot_league):
    row = bot_league["always_cooperate", "always_defect"]
    assert row["return1"] > 0 > row["return0"]
    assert row["own_coin0"] == 1.0 and row["own_coin1"] < 1.0
    assert row["pain0"] > row["pain1"]  # the exploited side hurts
    assert len(bot_league) == 6  # every pair once, with itself too


def test_league__one_compile_serves_every_bot_pair():
    def bot_plays():
        return [k for k in evaluate._PLAYS if k[:2] == ("bot", "bot") and k[3] == 64]

    evaluate.league([evaluate.bot("greedy"), evaluate.bot("random")], 64, 1)
    assert len(bot_plays()) == 1
    evaluate.league([evaluate.bot("always_defect")], 64, 1)
    assert len(bot_plays()) == 1


def test_evaluate_cli__writes_table_and_rejects_unknown_bot(tmp_path, capsys):
    out = tmp_path / "league"
    argv = ["--bots", "always_cooperate,greedy", "--envs", "64", "--episodes", "1"]
    assert evaluate.main(argv + ["--out", str(out)]) == 0
    data = json.loads((out / "league.json").read_text())
    assert [(r["seat0"], r["seat1"]) for r in data["rows"]] == [
        ("always_cooperate", "always_cooperate"),
        ("always_cooperate", "greedy"),
        ("greedy", "greedy"),
    ]
    assert "own-coin rate" in (out / "league.md").read_text()
    assert evaluate.main(["--bots", "nice", "--out", str(out)]) == 2
    assert "unknown bot 'nice'" in capsys.readouterr().err


# ----- trained runs in the league ---------------------------------------------------
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder as ``pain-jax train`` writes it: 2 seeds of a tiny noise-pain PPO
    config, checkpointed at its initial state (the league does not care whether
    parameters were trained), and the entrant restored from it (slot 1)."""
    from pain_jax.learn.config import TrainConfig
    from pain_jax.learn.host import Checkpoints, _config_record
    from pain_jax.learn.train import make_trainer

    config = TrainConfig(pain_mode="noise", num_envs=4, num_minibatches=1, hidden=(8,))
    out = tmp_path_factory.mktemp("run")
    (out / "config.json").write_text(json.dumps(_config_record(config, 2, 3)))
    # A runner of the right structure filled with random numbers: tracing its shapes
    # is far cheaper than compiling (or eagerly running) an init that runs once.
    init = jax.vmap(make_trainer(config).init)
    shapes = jax.eval_shape(init, jax.random.split(jax.random.key(3), 2))
    rng = np.random.default_rng(3)

    def fill(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.split(jax.random.key(4), x.shape)
        return jnp.asarray(rng.normal(size=x.shape).astype(x.dtype))

    runner = jax.tree.map(fill, shapes)
    ckpt = Checkpoints(out / "checkpoints")
    ckpt.save(1, runner)
    ckpt.close()
    return out, runner, evaluate.run("ppo", out, slot=1)


def test_evaluate__run_restores_seed0_params_of_the_slot(run_folder):
    out, runner, entrant = run_folder
    assert entrant.config == evaluate.load_config(out)
    assert entrant.config.pain_mode == "noise" and entrant.config.hidden == (8,)
    expected = jax.tree.map(lambda x: x[0, 1], runner.variables)
    jax.tree.map(np.testing.assert_array_equal, entrant.params, expected)


def test_evaluate__parses_run_arguments():
    assert evaluate._parse_run("a=runs/x@1") == ("a", Path("runs/x"), 1)
    assert evaluate._parse_run("a=runs/x@y") == ("a", Path("runs/x@y"), 0)
    with pytest.raises(ValueError, match="NAME=PATH"):
        evaluate._parse_run("runs/x")


def test_league__plays_runs_against_bots(run_folder):
    _, _, entrant = run_folder
    pairs = [(0, 0), (0, 1)]  # the bot pair reuses the bot league's compile
    rows = evaluate.league([evaluate.bot("always_defect"), entrant], 64, 1, pairs=pairs)
    rows = {(r["seat0"], r["seat1"]): r for r in rows}
    assert set(rows) == {
        ("always_defect", "always_defect"),
        ("always_defect", "ppo"),
    }
    row = rows["always_defect", "ppo"]
    assert 0 < row["pickups"] <= 64 * 50
    assert row["return0"] > 0 > row["return1"]  # greedy defector vs untrained net
    assert row["pain1"] > 0  # the run's seat feels the coins it loses
