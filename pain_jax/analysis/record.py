"""Recording rollouts of trained agents for the probes and the empathy metrics.

:func:`record_rollout` plays trained agents (agent-stacked variables, as a
:class:`~pain_jax.learn.train.Trainer` holds them) in ``E`` fresh copies of the
trainer's environment for ``T`` steps in one jitted ``lax.scan`` and keeps, per step:

* ``hidden`` float32 ``(T, E, A, H)``: each agent's recurrent state *after* reading
  ``obs[t]``, the state its action ``a_t`` was drawn from (what a theory-of-mind probe
  reads; needs a recurrent network, ``network="gru"``);
* ``obs`` float32 ``(T, E, A, *O)``; ``action`` int32 ``(T, E, A)``; ``reward``
  float32 ``(T, E, A)``;
* ``pain`` float32 ``(T, E, A)``: the level each agent acted under at ``t``;
  ``pain_after`` ``(T, E, A)``: after step ``t``'s reward;
* ``reset`` bool ``(T, E)``: ``obs[t]`` starts an episode; ``done`` bool ``(T, E)``;
* ``harm``, ``help`` float32 ``(T, E, A, A)``: the environment's per-step event
  records of step ``t`` (``[t, e, i, j]``: ``i`` did to ``j``), read from the true
  post-step state before any auto-reset, so an episode's last step keeps its events
  (zeros when the environment records none); ``states``: the inner environment
  states after each step's auto-reset (for rendering), only with ``keep_states``.

:func:`probe_data` turns a recording into the probes' datasets for ordered pairs
``(A, B)``: B's hidden state and B's raw observation as features, and the targets
(a) A's current pain, (b) whether B's upcoming action harms A, (c) A's upcoming
action, with A-in-pain as a condition and episode ids as split groups.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pain_jax.learn.rollout import _all_agents, reset_envs


def record_rollout(
    trainer,
    variables: Any,
    key: jax.Array,
    num_envs: int,
    num_steps: int,
    env_params=None,
    keep_states: bool = False,
) -> dict[str, np.ndarray]:
    """Play ``variables`` (``(A, ...)`` leaves) for ``num_steps`` steps in
    ``num_envs`` fresh copies; returns the arrays of the module docstring (numpy)."""
    if not trainer.policy.recurrent:
        raise ValueError(
            "probes read a recurrent hidden state: train with network='gru' "
            f"(this run uses {trainer.config.network!r})"
        )
    env, policy = trainer.env, trainer.policy
    env_params = trainer.env_params if env_params is None else env_params
    num_agents = trainer.num_agents
    run = _all_agents(policy, num_agents)
    step = jax.vmap(env.step_with_final, in_axes=(0, 0, 0, None))
    zeros = jnp.zeros((num_envs, num_agents, num_agents), jnp.float32)

    def one(state, k):
        k_act, k_env = jax.random.split(k)
        level = jax.vmap(env.pain_level)(state.env_state)
        carry, acted = run(
            variables, state.carry, state.obs, state.reset, level, k_act, env_params.pain
        )
        obs, env_state, reward, done, info, final = step(
            jax.random.split(k_env, num_envs), state.env_state, acted.action, env_params
        )
        out = {
            "hidden": carry,
            "obs": state.obs,
            "action": acted.action,
            "reward": reward,
            "pain": level,
            "pain_after": info["pain"].level,
            "reset": state.reset,
            "done": done,
            "harm": getattr(final, "harm", zeros),
            "help": getattr(final, "help", zeros),
        }
        if keep_states:
            out["states"] = env_state.env
        return state.replace(obs=obs, env_state=env_state, reset=done, carry=carry), out

    @jax.jit
    def play(key):
        key_reset, key_loop = jax.random.split(key)
        state = reset_envs(env, key_reset, env_params, num_envs, policy)
        return jax.lax.scan(one, state, jax.random.split(key_loop, num_steps))[1]

    return jax.tree.map(np.asarray, play(key))


def episode_groups(reset: np.ndarray) -> np.ndarray:
    """int64 ``(T, E)``: a distinct id for every episode of every copy (split groups:
    whole episodes go to the train or the test side)."""
    reset = np.asarray(reset, bool).copy()
    reset[0] = True
    per_env = np.cumsum(reset, axis=0)  # (T, E), 1-based within a copy
    offsets = np.concatenate([[0], np.cumsum(per_env[-1])[:-1]])
    return per_env + offsets[None, :]


def probe_data(rec: dict[str, np.ndarray], pairs: list[tuple[int, int]]) -> dict:
    """Probe datasets for ordered pairs ``(a, b)`` (B = ``b`` reads A = ``a``),
    stacked over pairs: ``N = len(pairs) * T * E`` rows.

    Returns a dict with ``features`` (``{"hidden": (N, H), "observation": (N, D)}``,
    B's), ``pain`` float32 ``(N,)`` (A's current level), ``harm_next`` int32
    ``(N,)`` (1 when B's action at this step harms A), ``action_next`` int32 ``(N,)``
    (A's action at this step), ``in_pain`` bool ``(N,)`` (A's level > 0) and
    ``groups`` int64 ``(N,)`` (episode ids, distinct across pairs too).
    """
    groups = episode_groups(rec["reset"])
    span = int(groups.max()) + 1
    out: dict[str, list] = {k: [] for k in ("hidden", "observation", "pain")}
    out.update({k: [] for k in ("harm_next", "action_next", "in_pain", "groups")})
    for p, (a, b) in enumerate(pairs):
        t, e = rec["action"].shape[:2]
        out["hidden"].append(rec["hidden"][:, :, b].reshape(t * e, -1))
        out["observation"].append(rec["obs"][:, :, b].reshape(t * e, -1))
        out["pain"].append(rec["pain"][:, :, a].reshape(-1))
        out["harm_next"].append((rec["harm"][:, :, b, a] > 0).reshape(-1))
        out["action_next"].append(rec["action"][:, :, a].reshape(-1))
        out["in_pain"].append((rec["pain"][:, :, a] > 0).reshape(-1))
        out["groups"].append(groups.reshape(-1) + p * span)
    cat = {k: np.concatenate(v) for k, v in out.items()}
    return {
        "features": {
            "hidden": cat["hidden"].astype(np.float32),
            "observation": cat["observation"].astype(np.float32),
        },
        "pain": cat["pain"].astype(np.float32),
        "harm_next": cat["harm_next"].astype(np.int32),
        "action_next": cat["action_next"].astype(np.int32),
        "in_pain": cat["in_pain"],
        "groups": cat["groups"],
    }
