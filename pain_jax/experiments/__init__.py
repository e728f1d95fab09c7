"""Thin programs behind the ``pain-jax`` sub-commands (tables, demos, training)."""
