"""Build ``notebooks/theory_of_mind.ipynb`` with nbformat.

.venv/bin/python notebooks/make_theory_of_mind.py
.venv/bin/python -m pytest --nbmake notebooks/theory_of_mind.ipynb
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    (
        "md",
        """# Theory of mind in the pain gridworld

Four agents share a 7x7 `pain_grid`: resources to collect, hazards that hurt whoever
stands on or next to them, and actions to push or clear a hazard or attack a
neighbour.  Each agent feels its own pain as noise inside its GRU network, and sees the
pain of the agents in its view (the "wince" channel).

This notebook

1. trains a small checkpoint itself (Advantage Alignment, a few updates: the agents
   have barely learned, so read the numbers as a demonstration of the method);
2. records rollouts of the trained agents: GRU states, observations, pain, actions and
   the environment's harm/help events;
3. fits **probes** on agent B's GRU state for A's pain, for whether B is about to harm
   A, and for A's next action (in pain or not), each against B's raw observation and
   shuffled labels;
4. computes the **behaviour metrics** (harm, help, retaliation, resonance);
5. renders an episode in which one agent moves a hazard away from another.""",
    ),
    (
        "code",
        """%matplotlib inline
import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from pain_jax.analysis import empathy_report, probe_report, probe_report_by
from pain_jax.analysis.record import probe_data, record_rollout
from pain_jax.envs.pain_grid import ACTION_NAMES
from pain_jax.learn.config import TrainConfig
from pain_jax.learn.host import restore_runner, train_run

config = TrainConfig(
    env="pain_grid",
    env_options={"num_agents": 4, "size": 7, "view_radius": 2, "num_resources": 3,
                 "num_hazards": 3, "max_steps": 50},
    algorithm="aa",
    network="gru",
    hidden=(32,),
    gru_hidden=32,
    pain_mode="noise",            # felt: pain is noise inside each agent's own network
    observe_others_pain=True,     # seen: visible agents' pain placed in the view
    num_envs=16,
    num_steps=25,
    num_updates=6,
    num_epochs=1,
    num_minibatches=2,
    lr=1e-3,
)
run_dir = Path(tempfile.mkdtemp()) / "tom_run"
summary = train_run(config, run_dir, num_seeds=1, progress=False)
print("reward per step at the end:", np.round(summary["final"]["reward_per_step"]["mean"], 3))
runner, trainer = restore_runner(run_dir, config, num_seeds=1)
variables = jax.tree.map(lambda x: x[0], runner.variables)   # seed 0, all 4 agents
print("observation shape per agent:", trainer.env.obs_shape)""",
    ),
    (
        "md",
        """## Recording

`record_rollout` plays the agents in fresh games in one jitted scan and keeps each
agent's GRU state after it read its observation (the state its action came from), its
observation, pain and action, and the per-step `harm[i, j]` / `help[i, j]` events.""",
    ),
    (
        "code",
        """rec = record_rollout(trainer, variables, jax.random.key(1), num_envs=32,
                     num_steps=100, keep_states=True)
for k in ("hidden", "obs", "pain", "harm", "help"):
    print(f"{k:7s}", rec[k].shape, rec[k].dtype)
off = ~np.eye(4, dtype=bool)
print("harm events between agents:", int((rec["harm"][..., off] > 0).sum()),
      " help events:", int((rec["help"][..., off] > 0).sum()),
      " steps in pain:", f"{(rec['pain'] > 0).mean():.2f}")""",
    ),
    (
        "md",
        """## Probes

For every ordered pair (A, B) B's GRU state is the feature set; B's raw observation is
the baseline, and every probe is also trained on shuffled labels (the control).  Whole
episodes are held out.  R² for A's pain; balanced accuracy (chance 1/classes) for the
classification targets.""",
    ),
    (
        "code",
        """pairs = [(0, 1), (1, 0), (2, 3), (3, 2)]
data = probe_data(rec, pairs)
opts = dict(groups=data["groups"], probes=("linear",))
reports = {
    "A's pain (R²)": (probe_report(data["features"], data["pain"], "regression",
                                   jax.random.key(2), **opts), "r2"),
    "B harms A next (bal. acc.)": (probe_report(
        data["features"], data["harm_next"], "classification", jax.random.key(3),
        num_classes=2, **opts), "balanced_accuracy"),
}
by_pain = probe_report_by(
    data["features"], data["action_next"],
    {"A in pain": data["in_pain"], "A not in pain": ~data["in_pain"]},
    jax.random.key(4), kind="classification", num_classes=len(ACTION_NAMES), **opts)
for cond, rep in by_pain.items():
    reports[f"A's next action, {cond} (bal. acc.)"] = (rep, "balanced_accuracy")

print(f"{'target':40s} {'B hidden':>9s} {'B obs':>9s} {'shuffled':>9s} {'chance':>7s}")
for name, (rep, metric) in reports.items():
    res = rep["results"]
    row = [res["hidden"]["linear"][metric], res["observation"]["linear"][metric],
           res["hidden"]["linear"][metric + "_shuffled"], rep["chance"].get(metric, 0.0)]
    print(f"{name:40s} " + " ".join(f"{v:9.3f}" for v in row[:3]) + f" {row[3]:7.3f}",
          "" if rep["reason"] is None else f"({rep['reason']})")""",
    ),
    (
        "md",
        """## Behaviour: harm, help, retaliation, resonance

Retaliation compares P(B harms A within 5 steps | A just harmed B) with the chance of
B harming A in any 5-step window; resonance correlates the pain and harm/help series
of pair (0, 1) with those of pair (2, 3), against circularly shifted copies.""",
    ),
    (
        "code",
        """emp = empathy_report(rec["harm"], rec["help"], rec["pain"], rec["reset"],
                     key=jax.random.key(5))
ret = emp["retaliation"]["pooled"]
res = emp["resonance"]
print(f"harm rate {emp['harm_rate']['mean']:.4f}   help rate {emp['help_rate']['mean']:.4f}")
print(f"retaliation: P(harm back | harmed) = {ret['p_given_harm']}  baseline = {ret['p_baseline']}")
print(f"resonance: {res['score']}  (shuffled control {res['control_mean']} ± {res['control_std']}, p = {res['p_value']})")""",
    ),
    (
        "md",
        """## An episode: one agent moves a hazard away from another

We look for a step where agent `i` cleared a hazard, or pushed it away, from next to
agent `j` (`help[i, j] > 0`, `i != j`), and render the steps around it.  Agents are the
coloured squares (a dot marks the helper's heading), hazards red, resources green.""",
    ),
    (
        "code",
        """events = np.argwhere(rec["help"] * off > 0)          # (t, env, i, j) rows
# an event away from episode starts and ends, so the frames belong to one episode
ok = [ev for ev in events if ev[0] >= 2 and not rec["done"][ev[0] - 2:ev[0] + 1, ev[1]].any()]
assert ok, "no help event recorded; record more steps"
t, e, i, j = ok[0]
print(f"step {t} of game {e}: agent {i} ({ACTION_NAMES[rec['action'][t, e, i]]}) "
      f"removed a hazard hurting agent {j}")
base = trainer.env.env
frames = [base.render(jax.tree.map(lambda x: x[s, e], rec["states"]), cell=24)
          for s in (t - 2, t - 1, t)]
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, s, frame in zip(axes, (t - 2, t - 1, t), frames):
    ax.imshow(frame)
    ax.set_title(f"after step {s}" + ("  (help)" if s == t else ""))
    ax.axis("off")
plt.tight_layout()
plt.show()""",
    ),
]


def main() -> None:
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell(src) if kind == "md" else new_code_cell(src)
        for kind, src in CELLS
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = Path(__file__).with_name("theory_of_mind.ipynb")
    nbformat.write(nb, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
