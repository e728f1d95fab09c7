"""Name -> environment factory registry behind ``pj.make`` and ``pj.register``."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

_REGISTRY: dict[str, Callable] = {}


def register(name: str, factory: Callable, *, overwrite: bool = False) -> None:
    """Register ``factory(**static_kwargs) -> Environment`` under ``name``."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"environment {name!r} is already registered")
    _REGISTRY[name] = factory


def registered_names() -> list[str]:
    return sorted(_REGISTRY)


def make(name: str, **overrides):
    """Build ``(env, params)``.

    Each override goes to the factory if it is one of its keyword arguments (static
    configuration such as ``grid_size`` or ``num_agents``), otherwise it replaces the
    field of the same name in the default params (traced numbers such as
    ``max_steps``).  Unknown names raise with the valid ones listed; the resulting
    params are validated before returning.
    """
    if name not in _REGISTRY:
        raise KeyError(
            f"unknown environment {name!r}; registered: {', '.join(registered_names())}"
        )
    factory = _REGISTRY[name]
    sig = inspect.signature(factory)
    takes_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    static = {k: v for k, v in overrides.items() if k in sig.parameters or takes_any}
    env = factory(**static)
    params = env.default_params()
    fields = {f.name for f in dataclasses.fields(params)}
    rest = {k: v for k, v in overrides.items() if k not in static}
    unknown = sorted(set(rest) - fields)
    if unknown:
        valid = sorted(set(sig.parameters) | fields)
        raise TypeError(
            f"unknown option(s) {unknown} for {name!r}; valid: {', '.join(valid)}"
        )
    params = params.replace(**rest)
    env.validate_params(params)
    return env, params
