"""``pain-jax reproduce games``: the game implementations checking each other (CPU,
about a minute).  This was the first ``make demo``.

1. A league of the fixed memory-one strategies on the iterated prisoner's dilemma,
   scored twice: exactly (analytic Markov-chain value) and by sampling thousands of
   vectorized episodes, so the two game implementations check each other.
2. A random-play Coin Game rollout over thousands of environment copies: pickups,
   own-coin rate (0.5 expected under random play) and throughput.
3. Gradients through opponent learning: naive learners vs LOLA on the exact IPD,
   256 seeds x 200 updates each (published: NL-NL -1.98, LOLA-LOLA -1.06).

Writes ``league.json``, ``demo.md`` and ``league.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import pain_jax as pj
from pain_jax.envs import strategies
from pain_jax.envs.matrix_exact import average_rewards, exact_params
from pain_jax.envs.payoffs import STRATEGIES
from pain_jax.experiments.report import environment_info, markdown_table, write_json


def strategy_league(key: jax.Array, game: str, num_envs: int, num_steps: int) -> dict:
    """Average reward per step of every pair of fixed strategies, exact and sampled.

    The sampled score is ``(1 - gamma) * sum_t gamma^t r_t`` over one episode of
    ``num_steps`` steps (long enough that ``gamma ** num_steps`` is negligible),
    averaged over ``num_envs`` copies; its standard error is reported too.
    """
    names = list(STRATEGIES)
    probs = jnp.asarray(np.stack([STRATEGIES[n] for n in names]))
    n = len(names)
    p1 = jnp.repeat(probs, n, axis=0)  # (n*n, 5): row i*n+j is (i, j)
    p2 = jnp.tile(probs, (n, 1))
    exact = jax.vmap(average_rewards, in_axes=(0, 0, None))(p1, p2, exact_params(game))

    env, params = pj.make(game, max_steps=num_steps)
    gamma = float(exact_params(game).gamma)
    disc = (1.0 - gamma) * gamma ** jnp.arange(num_steps, dtype=jnp.float32)

    def score(k, pair):
        traj = strategies.rollout(k, env, params, pair, num_steps)
        return disc @ traj["rewards"]  # (2,)

    @jax.jit
    def sampled_scores(k):
        keys = jax.random.split(k, (n * n, num_envs))
        pairs = jnp.stack([p1, p2], axis=1)  # (n*n, 2, 5)
        return jax.vmap(lambda ks, pair: jax.vmap(score, (0, None))(ks, pair))(
            keys, pairs
        )

    samples = np.asarray(sampled_scores(key))  # (n*n, num_envs, 2)
    mean = samples.mean(axis=1)
    sem = samples.std(axis=1) / np.sqrt(num_envs)
    return {
        "game": game,
        "strategies": names,
        "exact": np.asarray(exact).reshape(n, n, 2),
        "sampled": mean.reshape(n, n, 2),
        "sampled_sem": sem.reshape(n, n, 2),
        "num_envs": num_envs,
        "num_steps": num_steps,
    }


def coin_game_summary(key: jax.Array, num_envs: int, num_steps: int) -> dict:
    """Random play on Coin Game: pickups, own-coin rate and env-steps per second."""
    env, params = pj.make("coin_game")
    n_act = env.num_actions

    def run(k):
        k_reset, k_run = jax.random.split(k)
        obs, state = jax.vmap(env.reset, (0, None))(
            jax.random.split(k_reset, num_envs), params
        )

        def body(carry, k_t):
            state, totals = carry
            k_act, k_step = jax.random.split(k_t)
            actions = jax.random.randint(k_act, (num_envs, env.num_agents), 0, n_act)
            _, state, rewards, done, info = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k_step, num_envs), state, actions, params
            )
            ep = info["episode"]
            own = ep["own_pickups"].sum(-1)
            total = ep["pickups"].sum(-1)
            totals = totals + jnp.stack(
                [done.sum(), (done * own).sum(), (done * total).sum(), rewards.sum()]
            ).astype(jnp.float32)
            return (state, totals), None

        (_, totals), _ = jax.lax.scan(
            body, (state, jnp.zeros(4)), jax.random.split(k_run, num_steps)
        )
        return totals

    run = jax.jit(run)
    jax.block_until_ready(run(key))  # compile
    start = time.perf_counter()
    episodes, own, total, reward = np.asarray(jax.block_until_ready(run(key)))
    seconds = time.perf_counter() - start
    return {
        "num_envs": num_envs,
        "num_steps": num_steps,
        "episodes": int(episodes),
        "pickups_per_episode": float(total / max(episodes, 1)),
        "own_coin_rate": float(own / max(total, 1)),
        "reward_per_agent_step": float(reward / (num_envs * num_steps * env.num_agents)),
        "env_steps_per_second": num_envs * num_steps / seconds,
    }


def learner_pairs(key: jax.Array, num_seeds: int, num_updates: int) -> list[dict]:
    """Average reward per step and cooperation of NL-NL, LOLA-LOLA and LOLA-NL on the
    exact IPD (delta = eta = 1)."""
    from pain_jax.learn.exact_games import matrix_game
    from pain_jax.learn.exact_learners import Learner
    from pain_jax.learn.exact_play import play

    game = matrix_game("ipd")
    rows = []
    for a, b in (("naive", "naive"), ("lola", "lola"), ("lola", "naive")):
        _, final = jax.jit(play, static_argnums=(0, 1, 4, 5))(
            Learner(kind=a), Learner(kind=b), game, key, num_seeds, num_updates
        )
        reward = np.asarray(final["reward"])  # (S, 2)
        coop = np.asarray(final["coop"])
        rows.append(
            {
                "pair": f"{a}-{b}",
                "reward_mean": reward.mean(0),
                "reward_std": reward.std(0),
                "cooperation": coop.mean(0),
            }
        )
    return rows


def plot_league(league: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = league["strategies"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    for ax, kind in zip(axes, ("exact", "sampled"), strict=True):
        grid = league[kind][:, :, 0]
        im = ax.imshow(grid, cmap="RdYlGn", vmin=-3, vmax=0)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names if kind == "exact" else [])
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8)
        ax.set_title(f"{league['game'].upper()} {kind}: row player's reward/step")
        ax.set_xlabel("column player")
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pain-jax reproduce games", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("runs/games"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--envs", type=int, default=2048, help="sampled episodes per pair"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    key_league, key_coin = jax.random.split(jax.random.key(args.seed))

    print(
        f"[1/3] IPD strategy league: exact vs {args.envs} sampled episodes per pair ..."
    )
    league = strategy_league(key_league, "ipd", args.envs, 250)
    names = league["strategies"]
    rows = []
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            ex, sa, se = (
                league["exact"][i, j],
                league["sampled"][i, j],
                league["sampled_sem"][i, j],
            )
            rows.append([a, b, ex[0], sa[0], se[0], ex[1], sa[1], se[1]])
    league_md = markdown_table(
        [
            "player 1",
            "player 2",
            "exact r1",
            "sampled r1",
            "sem",
            "exact r2",
            "sampled r2",
            "sem",
        ],
        rows,
    )
    print(league_md)
    plot_league(league, args.out / "league.png")

    print("\n[2/3] Coin Game, random play, 4096 copies x 500 steps ...")
    coin = coin_game_summary(key_coin, 4096, 500)
    coin_md = markdown_table(["metric", "value"], [[k, v] for k, v in coin.items()])
    print(coin_md)

    print("\n[3/3] Learning with opponent-learning awareness: exact IPD, 256 seeds ...")
    pairs = learner_pairs(jax.random.key(args.seed), 256, 200)
    pairs_md = markdown_table(
        ["pair", "reward/step P1", "std", "reward/step P2", "std", "coop P1", "coop P2"],
        [
            [p["pair"], *np.stack([p["reward_mean"], p["reward_std"]], 1).ravel()]
            + list(p["cooperation"])
            for p in pairs
        ],
    )
    print(pairs_md)

    write_json(
        args.out / "league.json",
        {
            "league": league,
            "coin_game_random": coin,
            "learners": pairs,
            "environment": environment_info(),
        },
    )
    (args.out / "games.md").write_text(
        "# pain_jax games check\n\n"
        "## IPD fixed-strategy league (average reward per step)\n\n"
        + league_md
        + "\n\n## Coin Game, random play\n\n"
        + coin_md
        + "\n\n## Naive learners vs LOLA, exact IPD\n\n"
        + "Published: NL-NL -1.98 (0.14), LOLA-LOLA -1.06 (0.19).\n\n"
        + pairs_md
        + "\n"
    )
    print(f"\nwrote {args.out}/games.md, league.json, league.png")
    return 0
