"""Analysis of recorded rollouts: theory-of-mind probes and empathy behaviour metrics.

Both modules take plain numpy/jax arrays (shapes in their docstrings) and return plain
Python dicts, so results can be written straight to JSON.
"""

from pain_jax.analysis.empathy import (
    empathy_report,
    pair_rates,
    resonance,
    retaliation,
    valid_window_starts,
)
from pain_jax.analysis.probes import (
    probe_report,
    probe_report_by,
    split_by,
    split_indices,
)

__all__ = [
    "empathy_report",
    "pair_rates",
    "probe_report",
    "probe_report_by",
    "resonance",
    "retaliation",
    "split_by",
    "split_indices",
    "valid_window_starts",
]
