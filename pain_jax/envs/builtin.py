"""Registration of the built-in environments (one line each)."""

from pain_jax.envs.registry import register  # noqa: F401

# Environment modules add their ``register(...)`` calls here as they land.

# Iterated matrix games (sampled): two-player games by name, and the N-player PD.
# isort: split
from pain_jax.envs.matrix import NPlayerPD, matrix_game  # noqa: E402

register("ipd", matrix_game("ipd"))
register("imp", matrix_game("imp"))
register("chicken", matrix_game("chicken"))
register("stag_hunt", matrix_game("stag_hunt"))
register("n_pd", NPlayerPD)

# Coin Game (one coin at a time or one per agent, N players).
from pain_jax.envs.coin_game import CoinGame  # noqa: E402

register("coin_game", CoinGame)

# Pain Grid (N agents, partial views, resources, hazards, push/clear/attack).
from pain_jax.envs.pain_grid import PainGrid  # noqa: E402

register("pain_grid", PainGrid)
