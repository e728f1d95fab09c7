"""Writing results: JSON, markdown tables and a run folder, shared by every program."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path
from typing import Any

import jax
import numpy as np


def _to_builtin(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _to_builtin(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_builtin(v) for v in x]
    if isinstance(x, (np.ndarray, jax.Array)):
        return np.asarray(x).tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x


def environment_info() -> dict[str, Any]:
    """Where a result was measured: backend, devices, versions, date."""
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_to_builtin(data), indent=2) + "\n")
    return path


def markdown_table(
    headers: list[str], rows: list[list[Any]], floatfmt: str = ".3f"
) -> str:
    """A GitHub-flavoured markdown table; floats formatted with ``floatfmt``."""

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt)
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def fresh_stem(stem: Path) -> Path:
    """``stem`` if neither ``stem.json`` nor ``stem.md`` exists, else ``stem`` with
    the UTC time appended (``_HHMMSS``): a rerun never overwrites recorded results."""
    stem = Path(stem)
    if not (stem.with_suffix(".json").exists() or stem.with_suffix(".md").exists()):
        return stem
    now = _dt.datetime.now(_dt.UTC).strftime("%H%M%S")
    return stem.with_name(f"{stem.name}_{now}")
