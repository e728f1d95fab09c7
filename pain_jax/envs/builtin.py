"""Registration of the built-in environments (one line each)."""

from pain_jax.envs.registry import register  # noqa: F401

# Environment modules add their ``register(...)`` calls here as they land.

# Iterated matrix games (sampled): two-player games by name, and the N-player PD.
from pain_jax.envs.matrix import MatrixGame, NPlayerPD  # noqa: E402

for _game in ("ipd", "imp", "chicken", "stag_hunt"):
    register(_game, lambda checked=False, _g=_game: MatrixGame(_g, checked=checked))
register("n_pd", NPlayerPD)
