"""Two learners playing an exact game: ``vmap`` over seeds, ``scan`` over updates.

One update (iteration ``t``) of one seed:

1. each player's *acting* parameters are its parameters, perturbed by pain when pain
   is on: noise mode adds ``sigma * p_i * N(0, I)`` to the logits, dropout mode zeroes
   each logit with probability ``min(rate * p_i, max)`` and rescales the survivors;
   with ``p = 0`` (or pain off) the acting parameters *are* the parameters, bit for bit;
2. each player receives its exact per-step reward under the acting policies, which
   drives its pain (``pain_update``) for the next iteration;
3. both players compute their update directions at the acting parameters
   (simultaneously) and take one optax SGD step of size ``lr`` on their parameters.

Keys: seed ``s`` uses ``fold_in(key, s)`` (so the first seeds of a bigger run are the
same runs); from it come the two initial draws and a pain stream, folded with the
iteration and the player index, so every seed, iteration and player has its own noise.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from pain_jax.learn import exact_learners as el
from pain_jax.learn import optim
from pain_jax.pain import dynamics as pd


def initial_params(learner: el.Learner, key: jax.Array, dim: int, init_std) -> jax.Array:
    """``Normal(0, init_std)`` parameters ``(dim,)`` (a fixed learner's own strategy)."""
    if learner.kind == "fixed":
        return jnp.asarray(learner.strategy, jnp.float32)
    return init_std * jax.random.normal(key, (dim,), jnp.float32)


def pain_perturb(key, theta, level, params: pd.PainParams):
    """Acting parameters under pain level ``level`` ``()`` (see module docstring)."""
    k_noise, k_drop = jax.random.split(key)
    noisy = theta + params.sigma * level * jax.random.normal(k_noise, theta.shape)
    q = pd.drop_probability(level, params)
    keep = jax.random.bernoulli(k_drop, 1.0 - q, theta.shape)
    dropped = jnp.where(keep, theta / (1.0 - q), 0.0)
    out = jnp.where(params.mode == pd.NOISE, noisy, theta)
    out = jnp.where(params.mode == pd.DROPOUT, dropped, out)
    return jnp.where(level > 0, out, theta)


def _directions(learner_1, learner_2, game, other, a1, a2):
    """Both players' update directions, each from its own side of the game.

    When both follow the same rule (same pytree structure, e.g. LOLA-LOLA) the two
    computations are one ``vmap`` over the player axis: half as many (twice as wide)
    operations, which is what costs on a CPU with these tiny 4x4 systems.
    """
    tree = jax.tree.structure
    if tree(learner_1) == tree(learner_2) and learner_1.kind != "fixed":
        stack = lambda a, b: jax.tree.map(lambda x, y: jnp.stack([x, y]), a, b)
        d = jax.vmap(el.direction)(
            stack(learner_1, learner_2),
            stack(game, other),
            jnp.stack([a1, a2]),
            jnp.stack([a2, a1]),
        )
        return d[0], d[1]
    return el.direction(learner_1, game, a1, a2), el.direction(learner_2, other, a2, a1)


def _run_seed(learner_1, learner_2, game, pain, key, num_updates, init_std):
    k1, k2, k_pain = jax.random.split(key, 3)
    th1 = initial_params(learner_1, k1, game.dim, init_std)
    th2 = initial_params(learner_2, k2, game.dim, init_std)
    opt1, opt2 = optax.sgd(learner_1.lr), optax.sgd(learner_2.lr)
    other = game.swap()

    def update(carry, t):
        th1, th2, s1, s2, pain_state = carry
        a1, a2 = th1, th2
        if pain is not None:
            kt = jax.random.fold_in(k_pain, t)
            a1 = pain_perturb(jax.random.fold_in(kt, 0), th1, pain_state.level[0], pain)
            a2 = pain_perturb(jax.random.fold_in(kt, 1), th2, pain_state.level[1], pain)
        report = game.report(th1, th2)
        if pain is None:  # acting = unperturbed: reuse the report's solve if it has one
            acting_reward = report.get("reward", game.rewards(th1, th2))
        else:
            acting_reward = game.rewards(a1, a2)
            pain_state = pd.pain_update(pain_state, acting_reward, pain)
        d1, d2 = _directions(learner_1, learner_2, game, other, a1, a2)
        new1, s1 = optim.apply_direction(opt1, th1, s1, d1)
        new2, s2 = optim.apply_direction(opt2, th2, s2, d2)
        if learner_1.kind == "fixed":
            new1 = th1
        if learner_2.kind == "fixed":
            new2 = th2
        out = {
            "theta": jnp.stack([th1, th2]),
            "acting_reward": acting_reward,
            "pain": pain_state.level,
            **report,
        }
        return (new1, new2, s1, s2, pain_state), out

    carry = (th1, th2, opt1.init(th1), opt2.init(th2), pd.pain_init((2,)))
    carry, hist = jax.lax.scan(update, carry, jnp.arange(num_updates))
    final = {"theta": jnp.stack(carry[:2]), **game.report(carry[0], carry[1])}
    return hist, final


@functools.partial(jax.jit, static_argnames=("num_seeds", "num_updates"))
def play(
    learner_1: el.Learner,
    learner_2: el.Learner,
    game,
    key: jax.Array,
    num_seeds: int,
    num_updates: int,
    pain: pd.PainParams | None = None,
    init_std=1.0,
):
    """Play ``num_seeds`` independent learning runs of ``num_updates`` updates each.

    Args:
      learner_1, learner_2: :class:`~pain_jax.learn.exact_learners.Learner`.
      game: a game from :mod:`pain_jax.learn.exact_games`.
      key: PRNG key; seed ``s`` uses ``fold_in(key, s)``.
      pain: ``PainParams`` (fields may have a player axis ``(2,)``) or None for none.
      init_std: std of the ``Normal(0, init_std)`` initial parameters.

    Returns:
      ``(history, final)``.  ``history`` holds, per seed and update (before the
      update): ``theta`` ``(S, T, 2, dim)``, ``acting_reward`` ``(S, T, 2)`` (reward
      under the pain-perturbed policies), ``pain`` ``(S, T, 2)`` (level after that
      reward) and the game's ``report`` fields (``reward``, ``probs``, ``coop`` for
      matrix games; ``loss``, ``x_plus_y`` for the tandem game) of the unperturbed
      parameters.  ``final`` holds ``theta`` ``(S, 2, dim)`` and the report after the
      last update.
    """
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.arange(num_seeds))
    run = functools.partial(
        _run_seed,
        learner_1,
        learner_2,
        game,
        pain,
        num_updates=num_updates,
        init_std=init_std,
    )
    return jax.vmap(run)(keys)
