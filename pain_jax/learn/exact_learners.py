"""Learners for exact differentiable games: naive, LOLA, look-ahead, higher-order, SOS.

Every learner maps ``(game, mine, theirs)`` to an *ascent direction* for its own
parameters; :func:`pain_jax.learn.exact_play.play` applies it with an optax SGD step
of size ``lr`` (delta).  ``game.values(mine, theirs) = (V_mine, V_theirs)``; the
other player's view is ``game.swap()`` (see :mod:`pain_jax.learn.exact_games`).

Rules (delta = ``lr``, eta = ``opp_lr``; gradients of values, i.e. ascent):

* naive:      ``grad_1 V1``
* lola:       ``grad_1 V1 + eta * grad_1[ stop(grad_2 V1) . grad_2 V2 ]``
  (Foerster et al. 2018, first-order Taylor form, as in the original exact code)
* lookahead:  ``grad_1 V1(theta1, theta2^(k)(theta1))`` where ``theta2^(k)`` is ``k``
  naive SGD steps of size eta of the opponent, differentiated through (``steps = k``)
* hola:       order ``n`` (``steps = n``): ``grad_1 V1(theta1, theta2 + eta *
  u2_{n-1}(theta2, theta1))`` with ``u_0`` the naive gradient; the opponent is assumed
  to be an order ``n-1`` learner.  Order 1 equals look-ahead with one step.
* sos:        stable opponent shaping (Letcher et al. 2019).  With losses ``L = -V``,
  ``xi0 = xi - alpha H_o xi`` (look-ahead), ``chi`` the LOLA shaping term,
  ``p = min(p1, p2)``, ``p1 = 1`` if ``<-alpha chi, xi0> >= 0`` else
  ``min(1, -a |xi0|^2 / <-alpha chi, xi0>)``, ``p2 = |xi|^2`` if ``|xi| < b`` else 1,
  and the loss direction ``xi0 - p alpha chi``; both players' terms enter ``p``
  (alpha = eta).
* fixed:      no update (a fixed strategy, e.g. from ``payoffs.STRATEGIES``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from pain_jax.learn import optim

KINDS = ("naive", "lola", "lookahead", "hola", "sos", "fixed")


@struct.dataclass
class Learner:
    """A learning rule and its (traced) step sizes.

    Attributes:
      kind: one of :data:`KINDS` (static).
      steps: look-ahead unroll length ``k`` or higher-order ``n`` (static).
      lr: delta, the own step size (traced).
      opp_lr: eta, the step size assumed for the opponent (traced).
      sos_a, sos_b: SOS's ``a`` and ``b`` (traced; 0.5 and 0.1 in the paper).
      strategy: ``(dim,)`` fixed parameters (logits) for ``kind="fixed"``, else None.
    """

    kind: str = struct.field(pytree_node=False, default="naive")
    steps: int = struct.field(pytree_node=False, default=1)
    lr: jax.Array = 1.0
    opp_lr: jax.Array = 1.0
    sos_a: jax.Array = 0.5
    sos_b: jax.Array = 0.1
    strategy: jax.Array | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown learner kind {self.kind!r}; known: {KINDS}")
        if self.kind == "fixed" and self.strategy is None:
            raise ValueError("a fixed learner needs `strategy` (its parameters)")
        if self.kind in ("lookahead", "hola") and self.steps < 1:
            raise ValueError(f"{self.kind} needs steps >= 1, got {self.steps}")

    @property
    def label(self) -> str:
        if self.kind in ("lookahead", "hola"):
            return f"{self.kind}{self.steps}"
        return self.kind


def fixed_learner(probs, eps: float = 1e-6) -> Learner:
    """A fixed memory-one strategy ``P(C | state)`` ``(5,)`` as a learner.

    Stored as logits of ``clip(probs, eps, 1 - eps)`` so pure strategies stay finite;
    ``sigmoid`` gives back the probabilities to within ``eps``.
    """
    p = jnp.clip(jnp.asarray(probs, jnp.float32), eps, 1.0 - eps)
    return Learner(kind="fixed", strategy=jnp.log(p) - jnp.log1p(-p))


# ----- the pieces (all differentiable, all from player 1's side) --------------------


def naive_grad(game, mine, theirs):
    """``grad_1 V1`` ``(dim,)``."""
    return jax.grad(lambda m: game.values(m, theirs)[0])(mine)


def lola_shaping(game, mine, theirs):
    """The LOLA shaping term ``grad_1[ stop(grad_2 V1) . grad_2 V2 ]`` ``(dim,)``:
    how my parameters move the opponent's naive gradient, weighted by how much that
    gradient matters to me."""
    g21 = jax.lax.stop_gradient(jax.grad(lambda t: game.values(mine, t)[0])(theirs))

    def opp_grad_along(m):
        # c . grad_2 V2(m, theta2) is V2's directional derivative along c: one jvp
        # (reverse-over-forward is cheaper than differentiating a gradient)
        return jax.jvp(lambda t: game.values(m, t)[1], (theirs,), (g21,))[1]

    return jax.grad(opp_grad_along)(mine)


def opponent_after(game, mine, theirs, opp_lr, num_steps: int):
    """The opponent's parameters after ``num_steps`` naive SGD steps of size
    ``opp_lr`` against ``mine``, as a differentiable function of ``mine``."""
    run = optim.unrolled(optax.sgd(opp_lr), num_steps)
    return run(theirs, lambda t: game.values(mine, t)[1])


def lookahead_objective(game, mine, theirs, opp_lr, num_steps: int):
    """``V1(theta1, theta2^(k)(theta1))``: my value after the opponent learns."""
    return game.values(mine, opponent_after(game, mine, theirs, opp_lr, num_steps))[0]


def hola_objective(game, mine, theirs, opp_lr, order: int):
    """``V1(theta1, theta2 + eta * u2_{n-1}(theta2, theta1))`` for ``order`` n >= 1:
    my value after the opponent takes one step as an order n-1 learner."""
    u2 = hola_direction(game.swap(), theirs, mine, opp_lr, order - 1)
    opt = optax.sgd(opp_lr)
    after, _ = optim.apply_direction(opt, theirs, opt.init(theirs), u2)
    return game.values(mine, after)[0]


def hola_direction(game, mine, theirs, opp_lr, order: int):
    """Higher-order LOLA direction of ``order`` n (0 = naive)."""
    if order == 0:
        return naive_grad(game, mine, theirs)
    return jax.grad(lambda m: hola_objective(game, m, theirs, opp_lr, order))(mine)


def _sos_terms(game, mine, theirs, alpha):
    """Loss-form ``xi``, ``xi0`` and ``chi`` of the player whose params come first."""
    xi = -naive_grad(game, mine, theirs)
    g2 = jax.lax.stop_gradient(jax.grad(lambda t: game.values(mine, t)[1])(theirs))
    # look-ahead term: grad_1[ grad_2 L1 . stop(grad_2 L2) ] = grad_1[grad_2 V1 . g2]
    la = jax.grad(lambda m: jax.jvp(lambda t: game.values(m, t)[0], (theirs,), (g2,))[1])(
        mine
    )
    xi0 = xi - alpha * la
    # the shaping term is a product of two gradients: the same for losses and values
    chi = lola_shaping(game, mine, theirs)
    return xi, xi0, chi


def sos_direction(game, mine, theirs, alpha, a, b):
    """SOS ascent direction for the first player (``p`` uses both players' terms)."""
    xi_1, xi0_1, chi_1 = _sos_terms(game, mine, theirs, alpha)
    xi_2, xi0_2, chi_2 = _sos_terms(game.swap(), theirs, mine, alpha)
    xi = jnp.concatenate([xi_1, xi_2])
    xi0 = jnp.concatenate([xi0_1, xi0_2])
    chi = jnp.concatenate([chi_1, chi_2])
    dot = jnp.vdot(-alpha * chi, xi0)
    # p1 = min(1, -a |xi0|^2 / dot) only when dot < 0; a safe denominator elsewhere
    safe_dot = jnp.where(dot < 0, dot, -1.0)
    p1 = jnp.where(dot >= 0, 1.0, jnp.minimum(1.0, -a * jnp.vdot(xi0, xi0) / safe_dot))
    xi_sq = jnp.vdot(xi, xi)
    p2 = jnp.where(xi_sq < b**2, xi_sq, 1.0)
    p = jnp.minimum(p1, p2)
    return -(xi0_1 - p * alpha * chi_1)


def direction(learner: Learner, game, mine, theirs):
    """The ascent direction ``(dim,)`` of ``learner`` at ``(mine, theirs)``."""
    kind = learner.kind
    if kind == "naive":
        return naive_grad(game, mine, theirs)
    if kind == "lola":
        shaping = lola_shaping(game, mine, theirs)
        return naive_grad(game, mine, theirs) + learner.opp_lr * shaping
    if kind == "lookahead":
        k = learner.steps
        return jax.grad(
            lambda m: lookahead_objective(game, m, theirs, learner.opp_lr, k)
        )(mine)
    if kind == "hola":
        return hola_direction(game, mine, theirs, learner.opp_lr, learner.steps)
    if kind == "sos":
        return sos_direction(
            game, mine, theirs, learner.opp_lr, learner.sos_a, learner.sos_b
        )
    return jnp.zeros_like(mine)  # fixed
