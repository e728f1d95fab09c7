"""pain_jax: vectorized multi-agent environments and opponent shaping, with pain.

Quick use::

    import pain_jax as pj
    env, params = pj.make("coin_game", num_agents=2, grid_size=3)
    obs, state = env.reset(key, params)
    obs, state, rewards, done, info = env.step(key, state, actions, params)
"""

from pain_jax.envs import make, register, registered_names

__all__ = ["make", "register", "registered_names"]
__version__ = "0.1.0"
