"""Build ``notebooks/grad_through_learning.ipynb`` with nbformat.

.venv/bin/python notebooks/make_grad_through_learning.py
.venv/bin/python -m pytest --nbmake notebooks/grad_through_learning.ipynb
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    (
        "md",
        """# Gradients through learning: LOLA on the exact iterated prisoner's dilemma

In the iterated prisoner's dilemma (IPD) each player has a memory-one policy: 5 logits,
`sigmoid(theta)` = P(cooperate | start, CC, CD, DC, DD) from its own view.  Its exact
discounted value is `V_i = p0^T (I - gamma P)^-1 r_i` (`pain_jax.envs.matrix_exact`),
a smooth function of both players' logits, so we can differentiate *through the other
player's learning step*:

1. the opponent's next parameters as a function of mine;
2. the LOLA shaping term next to the naive gradient;
3. a finite-difference check of the shaping gradient;
4. LOLA-LOLA vs NL-NL policies over 200 updates.""",
    ),
    (
        "code",
        """import jax
import jax.numpy as jnp
import numpy as np
import optax
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pain_jax.envs.payoffs import STATE_NAMES
from pain_jax.learn import exact_games as eg, exact_learners as el, optim
from pain_jax.learn.exact_play import play

game = eg.matrix_game("ipd")          # payoffs (2, 2, 2), gamma 0.96, climbs V
theta = jax.random.normal(jax.random.key(0), (2, 5))
mine, theirs = theta[0], theta[1]
print("my P(C | state):   ", np.round(jax.nn.sigmoid(mine), 3))
print("their P(C | state):", np.round(jax.nn.sigmoid(theirs), 3))
print("values (V1, V2):   ", game.values(mine, theirs))""",
    ),
    (
        "md",
        """## 1. The opponent's update as a function of my parameters

A learner's step is a pure optax function `(params, opt_state, objective) ->
(params, opt_state)`.  The naive opponent climbs its own value `V2(mine, .)`; its new
parameters depend on `mine` through the gradient it follows, and JAX differentiates
that dependence like any other function.""",
    ),
    (
        "code",
        """eta = 1.0
step = optim.ascent_step(optax.sgd(eta))

def opponent_next(m):
    new, _ = step(theirs, optax.sgd(eta).init(theirs), lambda t: game.values(m, t)[1])
    return new

print("their next logits:", np.round(opponent_next(mine), 3))
jac = jax.jacobian(opponent_next)(mine)          # d theta2' / d theta1, (5, 5)
print("d theta2' / d theta1 =\\n", np.round(jac, 3))""",
    ),
    (
        "md",
        """## 2. The shaping term vs the naive gradient

LOLA adds `eta * grad_1[ stop(grad_2 V1) . grad_2 V2 ]` to the naive gradient
`grad_1 V1`: how my parameters move the opponent's gradient, weighted by how much
that move matters to me.""",
    ),
    (
        "code",
        """naive = el.naive_grad(game, mine, theirs)
shaping = el.lola_shaping(game, mine, theirs)
norms = jnp.linalg.norm(naive) * jnp.linalg.norm(shaping)
cos = float(jnp.vdot(naive, shaping) / norms)
print(f"{'state':>6s} {'naive':>9s} {'shaping':>9s}")
for s, a, b in zip(STATE_NAMES, np.asarray(naive), np.asarray(shaping)):
    print(f"{s:>6s} {a:9.3f} {b:9.3f}")
print(f"cosine(naive, shaping) = {cos:.3f}")
# the same term, written with the Jacobian of the opponent's step from part 1:
c = jax.grad(lambda t: game.values(mine, t)[0])(theirs)
same = np.allclose(jac.T @ c, eta * shaping, rtol=1e-4, atol=1e-4)
print("jac^T c == eta * shaping:", same)""",
    ),
    (
        "md",
        """## 3. Finite-difference check of the shaping gradient (float64)

Central differences of `theta1 -> c . grad_2 V2(theta1, theta2)` with `c` held fixed
must match the autodiff shaping term.""",
    ),
    (
        "code",
        """with jax.enable_x64(True):
    g64 = eg.matrix_game("ipd", dtype=jnp.float64)
    m64, t64 = mine.astype(jnp.float64), theirs.astype(jnp.float64)
    c64 = jax.grad(lambda t: g64.values(m64, t)[0])(t64)
    f = jax.jit(lambda m: jnp.vdot(c64, jax.grad(lambda t: g64.values(m, t)[1])(t64)))
    h = 1e-5
    fd = np.array([(f(m64 + h * e) - f(m64 - h * e)) / (2 * h) for e in np.eye(5)])
    auto = np.asarray(el.lola_shaping(g64, m64, t64))
    rel = np.linalg.norm(auto - fd) / np.linalg.norm(fd)
print("autodiff:", np.round(auto, 6))
print("central: ", np.round(fd, 6))
print(f"relative error {rel:.2e}")
assert rel < 1e-3""",
    ),
    (
        "md",
        """## 4. LOLA-LOLA vs NL-NL over training

200 seeds, 200 simultaneous updates, delta = eta = 1, initial logits ~ N(0, 1) (the
setting of the LOLA paper; `pain-jax reproduce lola` runs 1000 seeds and all rows).""",
    ),
    (
        "code",
        """key = jax.random.key(2018)
runs = {}
for name, kind in (("NL-NL", "naive"), ("LOLA-LOLA", "lola")):
    learner = el.Learner(kind=kind)
    hist, final = play(learner, learner, game, key, 200, 200)
    runs[name] = (hist, final)
    tft = float(eg.is_tit_for_tat(final["probs"]).mean())
    print(f"{name:10s} reward/step {float(final['reward'].mean()):.2f} "
          f"(std {float(final['reward'].std()):.2f}), tit-for-tat {100 * tft:.0f}%")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
for ax, (name, (hist, _)) in zip(axes, runs.items()):
    mean = np.asarray(hist["probs"][:, :, 0].mean(0))      # (updates, 5), player 1
    for s, label in enumerate(STATE_NAMES):
        ax.plot(mean[:, s], label=f"P(C | {label})")
    ax.set_title(f"{name}: player 1, mean over seeds")
    ax.set_xlabel("update")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """Naive learners slide to mutual defection (about -2 per step); LOLA agents open
with cooperation, cooperate after CC and DC and defect after CD and DD: tit-for-tat,
reached by differentiating through the other's learning.""",
    ),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell(src) if kind == "md" else new_code_cell(src)
        for kind, src in CELLS
    ]
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    return nb


if __name__ == "__main__":
    path = Path(__file__).with_name("grad_through_learning.ipynb")
    nbformat.write(build(), path)
    print(f"wrote {path}")
