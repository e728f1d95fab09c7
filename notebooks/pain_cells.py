# %% [markdown]
# # Pain in pain_jax
# Three small demonstrations of the pain model (`shared/docs/mission.md`, "Pain, specified"):
# 1. the pain level following a reward trace (threshold, inverse shape, lingering decay);
# 2. the action distribution of a fixed policy widening with pain;
# 3. the vicious cycle on Coin Game: a pained agent against a fixed opponent.
# Everything runs on CPU in well under a minute.

# %%
import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

import pain_jax as pj
from pain_jax.nets import ActorCriticMLP
from pain_jax.pain import DROPOUT, INVERSE, LINEAR, NOISE, OFF, Pain, PainParams, PainWrapper, pain_trace

matplotlib.rcParams["figure.figsize"] = (9, 3)

# %% [markdown]
# ## 1. Pain follows the reward
# Instant pain is `scale * max(0, threshold - r)` (linear) or the saturating inverse shape
# `scale * (1 - 1 / (1 + deficit))`; after a painful step pain lingers, decaying by `decay`
# per calm step, for exactly `linger` calm steps, then drops to 0; `cap` bounds it.

# %%
rewards = jnp.array([1, 1, -1, 1, 1, 1, 1, 1, 1, -3, -3, 1, 1, 1, 1, 1, 1, 1, 0.5, 1], jnp.float32)
settings = {
    "linear, decay 0.7, linger 4": PainParams(threshold=0.8, decay=0.7, linger=4),
    "linear, linger 1": PainParams(threshold=0.8, decay=0.7, linger=1),
    "inverse shape": PainParams(threshold=0.8, decay=0.7, linger=4, shape=INVERSE),
    "linear, cap 2.5": PainParams(threshold=0.8, decay=0.7, linger=4, cap=2.5),
}
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3))
ax0.step(range(len(rewards)), rewards, where="mid", color="k")
ax0.axhline(0.8, ls="--", color="r", label="threshold 0.8")
ax0.set(title="reward trace", xlabel="step", ylabel="reward")
ax0.legend()
for name, params in settings.items():
    _, levels = pain_trace(rewards, params)
    ax1.plot(levels, marker="o", ms=3, label=name)
ax1.set(title="pain level p_t", xlabel="step")
ax1.legend(fontsize=7)
plt.show()
_, levels = pain_trace(rewards, settings["linear, decay 0.7, linger 4"])
print("linear, decay 0.7, linger 4:", np.round(np.asarray(levels), 3))

# %% [markdown]
# A sweep over pain settings is one `vmap`: every `PainParams` field is traced.

# %%
thresholds = jnp.linspace(-1.0, 1.0, 8)
sweep = jax.jit(jax.vmap(lambda th: pain_trace(rewards, PainParams(threshold=th))[1]))
print("mean pain per threshold:", np.round(np.asarray(sweep(thresholds).mean(axis=1)), 3))

# %% [markdown]
# ## 2. A fixed policy's action distribution widens with pain
# One fixed (randomly initialised, sharpened) MLP policy and one observation; for each pain
# level we average the action probabilities over 2000 independent pain keys.

# %%
net = ActorCriticMLP(5, hidden=(32, 32), pain_logits=True)
obs = jax.random.normal(jax.random.key(0), (1, 8))
variables = net.init({"params": jax.random.key(1), "pain": jax.random.key(2)}, obs, jnp.zeros(1), PainParams())
# Sharpen the policy so that it is nearly deterministic without pain.
variables = jax.tree_util.tree_map_with_path(
    lambda path, x: x * 300.0 if "logits" in jax.tree_util.keystr(path) else x, variables
)


@jax.jit
def mean_probs(level, params):
    def one(key):
        pi, _ = net.apply(variables, obs, jnp.full(1, level), params, rngs={"pain": key})
        return pi.probs[0]

    return jax.vmap(one)(jax.random.split(jax.random.key(3), 2000)).mean(axis=0)


def entropy(p):
    return float(-(p * jnp.log(jnp.maximum(p, 1e-12))).sum())


pain_levels = [0.0, 0.5, 1.0, 2.0, 4.0]
fig, axes = plt.subplots(1, 2, figsize=(11, 3))
for ax, (mode_name, mode) in zip(axes, [("noise", NOISE), ("dropout", DROPOUT)]):
    params = PainParams(mode=mode, sigma=1.0, dropout_rate=0.2, dropout_max=0.8)
    for i, lvl in enumerate(pain_levels):
        p = mean_probs(lvl, params)
        ax.bar(np.arange(5) + 0.15 * (i - 2), p, width=0.15, label=f"p={lvl} (H={entropy(p):.2f})")
    ax.set(title=f"{mode_name} mode", xlabel="action", ylabel="mean probability")
    ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## 3. The vicious cycle on Coin Game
# Two agents on a 3x3 Coin Game (one coin at a time). Both follow the same fixed greedy
# policy (logits 4 on the shortest move towards the coin); only agent 0 feels pain: noise of
# std `sigma * p` on its logits (the `Pain` layer), with pain driven by its rewards through
# `PainWrapper` (threshold 0: losing a coin to the opponent, -2, hurts). Pain makes agent 0
# lose races, losing coins hurts, more pain makes it lose more.

# %%
env, env_params = pj.make("coin_game", num_agents=2, grid_size=3)
wrapped = PainWrapper(env)
G = env.grid_size


def greedy(pos, coin):
    """Shortest wrapped move from pos to coin: RIGHT=0, LEFT=1, UP=2, DOWN=3, STAY=4."""
    dr, dc = (coin[0] - pos[0]) % G, (coin[1] - pos[1]) % G
    vert = jnp.where(dr <= G // 2, 3, 2)
    horiz = jnp.where(dc <= G // 2, 0, 1)
    return jnp.where(dr != 0, vert, jnp.where(dc != 0, horiz, 4))


def run(pain_params, copies=64, steps=300, seed=0):
    params = wrapped.wrap_params(env_params, pain_params)
    feel = jnp.array([1.0, 0.0])  # only agent 0 feels pain

    def one(key):
        obs, state = wrapped.reset(key, params)

        def step(state, key):
            k_pain, k_act, k_env = jax.random.split(key, 3)
            s = state.env
            coin = s.coin_pos[jnp.argmax(s.coin_present)]
            moves = jax.vmap(greedy, in_axes=(0, None))(s.agent_pos, coin)
            logits = 4.0 * jax.nn.one_hot(moves, 5)
            level = state.pain.level * feel
            logits = Pain().apply({}, logits, level, pain_params, rngs={"pain": k_pain})
            actions = jax.random.categorical(k_act, logits).astype(jnp.int32)
            _, state, rewards, _, _ = wrapped.step(k_env, state, actions, params)
            return state, (rewards, level)

        return jax.lax.scan(step, state, jax.random.split(key, steps))[1]

    return jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(seed), copies))


base = PainParams(threshold=0.0, scale=1.0, decay=0.9, linger=10, cap=6.0, sigma=1.5)
results = {name: run(base.replace(mode=mode)) for name, mode in [("no pain", OFF), ("pain (noise)", NOISE)]}
for name, (r, lvl) in results.items():
    print(f"{name:13s} agent-0 reward/step {float(r[..., 0].mean()):+.3f}   "
          f"opponent {float(r[..., 1].mean()):+.3f}   mean pain level {float(lvl[..., 0].mean()):.2f}")

# %% [markdown]
# The pain level is carried in both runs (with mode `OFF` it has no effect on the policy).
# When pain acts, agent 0 earns less and its mean pain level is higher: lost coins hurt,
# and pain makes it lose coins. Within the pained run, the reward agent 0 earns on a step,
# by the pain it acted under: in pain it earns less than when calm.

# %%
r, lvl = results["pain (noise)"]
r0, l0 = np.asarray(r[..., 0]).ravel(), np.asarray(lvl[..., 0]).ravel()
bins = [0.0, 1e-6, 1.0, 2.0, 4.0, np.inf]
labels, means = [], []
for lo, hi in zip(bins[:-1], bins[1:]):
    sel = (l0 >= lo) & (l0 < hi)
    if sel.sum() > 50:
        labels.append("p = 0" if hi == 1e-6 else f"[{lo:g}, {hi:g})")
        means.append(r0[sel].mean())
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3))
ax0.bar(list(results), [float(v[0][..., 0].mean()) for v in results.values()], color=["grey", "crimson"])
ax0.set(title="agent 0: mean reward per step", ylabel="reward")
ax1.bar(labels, means, color="crimson")
ax1.set(title="pained agent: reward by pain level when acting", xlabel="pain level", ylabel="mean reward")
plt.show()
print(dict(zip(labels, np.round(means, 3))))
assert float(results["pain (noise)"][0][..., 0].mean()) < float(results["no pain"][0][..., 0].mean())
