"""Behaviour metrics of empathy and conflict from recorded event arrays of one world.

Array interface (numpy or jax; time leads, then parallel environments E, then agents):

- harm float (T, E, A, A): harm[t, e, i, j] = damage done by agent i to agent j at
  step t (a step "has harm" from i to j when the value exceeds ``eps``);
- help float (T, E, A, A): help given by i to j, same convention;
- pain float (T, E, A): pain levels;
- reset bool (T, E): True on the first step of an episode (episode boundaries).

Arrays without the E axis ((T, A, A), (T, A), (T,)) are accepted and treated as E = 1.
Windows and correlations never cross an episode boundary or the end of the recording.

Definitions:

- rate[i, j]: share of recorded steps on which i harms (helps) j; the "mean" is over
  ordered pairs i != j.
- retaliation, provoker i and responder j: among steps t where i harms j and the window
  t+1 .. t+w lies wholly inside t's episode, the share where j harms i somewhere in the
  window (p_given_harm); baseline: the same share over every step s whose window
  s+1 .. s+w lies inside its episode (p_baseline). Steps whose window would cross a
  boundary count in neither. Pooled: provocations and windows summed over ordered pairs.
- resonance of pairs (a, b) and (c, d): for three pair-level series, pain (p_a + p_b),
  harm (harm a->b + harm b->a) and help (likewise), the within-episode correlation of the
  (a, b) series with the (c, d) series: each series is centred on its episode mean, then
  r = sum(x * y) / sqrt(sum(x²) sum(y²)) over all steps (a length-weighted pooling of
  the per-episode correlations; episodes where a series is constant add nothing).
  The score is the mean r over the defined series. Control: the (c, d) series are
  circularly shifted within every episode by an independent random offset in
  [1, L - 1] (all three series by the same offset), which keeps each series'
  within-episode autocorrelation but breaks its alignment in time with (a, b); over
  ``num_shuffles`` shifts the report gives the control mean and std, z = (score -
  mean) / std, and the permutation p-value (1 + #{control >= score}) / (1 + shuffles).

Undefined values (no provocation, constant series) are None in reports, so the report
is strict JSON.
"""

from __future__ import annotations

import math

import jax
import numpy as np

SERIES = ("pain", "harm", "help")


def _with_env_axis(a, ndim_full):
    a = np.asarray(a)
    return a[:, None] if a.ndim == ndim_full - 1 else a


def _json(x):
    """Plain floats / nested lists, NaN -> None."""
    if isinstance(x, dict):
        return {k: _json(v) for k, v in x.items()}
    arr = np.asarray(x)
    if arr.ndim:
        return [_json(v) for v in arr]
    if arr.dtype.kind in "iub":
        return int(arr)
    v = float(arr)
    return None if math.isnan(v) else v


def episode_ids(reset):
    """int (T, E): episode number within each environment column (0 before any reset)."""
    return np.cumsum(_with_env_axis(reset, 2).astype(np.int64), axis=0)


def valid_window_starts(reset, window: int):
    """bool (T, E): steps t whose window t+1 .. t+window lies inside t's episode."""
    ep = episode_ids(reset)
    t = len(ep)
    valid = np.zeros(ep.shape, bool)
    if window < t:
        valid[: t - window] = ep[window:] == ep[: t - window]
    return valid


def pair_rates(events, eps: float = 0.0):
    """float64 (A, A): share of steps with events[t, e, i, j] > eps; diagonal NaN."""
    ev = _with_env_axis(events, 4) > eps
    rate = ev.mean(axis=(0, 1))
    np.fill_diagonal(rate, np.nan)
    return rate


def _off_diagonal_mean(m):
    mask = ~np.eye(len(m), dtype=bool)
    return float(np.mean(m[mask])) if mask.any() else math.nan


def retaliation(harm, reset, window: int = 5, eps: float = 0.0) -> dict:
    """Retaliation counts and probabilities (see the module docstring).

    Returns arrays (A, A) indexed [provoker i, responder j]: "n_provocations",
    "n_retaliations", "n_windows", "n_windows_with_harm", "p_given_harm", "p_baseline",
    "ratio" (p_given_harm / p_baseline) and "difference"; and "pooled" with the same
    keys as floats, summed over ordered pairs i != j.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    ev = _with_env_axis(harm, 4) > eps  # (T, E, A, A)
    valid = valid_window_starts(reset, window)  # (T, E)
    # counts of j->i harm in (t, t + window] from cumulative sums along time
    cum = np.concatenate([np.zeros_like(ev[:1], np.int64), np.cumsum(ev, 0)])
    later = np.zeros(ev.shape, np.int64)
    if window < len(ev):
        later[: len(ev) - window] = cum[window + 1 :] - cum[1 : len(ev) - window + 1]
    back = np.swapaxes(later > 0, -1, -2)  # back[t, e, i, j]: j harms i in the window
    v = valid[..., None, None]
    counts = {
        "n_provocations": np.sum(ev & v, axis=(0, 1)),
        "n_retaliations": np.sum(ev & v & back, axis=(0, 1)),
        "n_windows": np.broadcast_to(np.sum(valid), ev.shape[2:]).copy(),
        "n_windows_with_harm": np.sum(v & back, axis=(0, 1)),
    }
    off = ~np.eye(ev.shape[-1], dtype=bool)
    pooled = {k: int(c[off].sum()) for k, c in counts.items()}

    def probs(c):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.divide(c["n_retaliations"], c["n_provocations"], dtype=np.float64)
            base = np.divide(c["n_windows_with_harm"], c["n_windows"], dtype=np.float64)
            p, base = (
                np.where(np.isinf(p), np.nan, p),
                np.where(np.isinf(base), np.nan, base),
            )
            ratio = np.where(base > 0, p / np.where(base > 0, base, 1.0), np.nan)
        return {
            "p_given_harm": p,
            "p_baseline": base,
            "ratio": ratio,
            "difference": p - base,
        }

    out = {k: np.where(off, c, 0) for k, c in counts.items()}
    for k, m in probs(counts).items():
        out[k] = np.where(off, m, np.nan)
    pooled.update({k: float(v) for k, v in probs(pooled).items()})
    out["pooled"] = pooled
    return out


def pair_series(harm, help, pain, pair):
    """float64 (3, T, E): the pain, harm and help series of pair (a, b) (see SERIES)."""
    a, b = pair
    harm, help = _with_env_axis(harm, 4), _with_env_axis(help, 4)
    pain = _with_env_axis(pain, 3)
    return np.stack(
        [
            pain[..., a] + pain[..., b],
            harm[..., a, b] + harm[..., b, a],
            help[..., a, b] + help[..., b, a],
        ]
    ).astype(np.float64)


def _segments(reset):
    """Per step (T, E): flat segment id, its first flat index and its length, where the
    flat index runs over env-major order (e * T + t) so segments are contiguous."""
    ep = episode_ids(reset)
    t_len, n_env = ep.shape
    flat_ep = (ep.T + np.arange(n_env)[:, None] * (t_len + 1)).ravel()  # (E*T,)
    _, seg, length = np.unique(flat_ep, return_inverse=True, return_counts=True)
    start = np.concatenate([[0], np.cumsum(length)[:-1]])
    return seg, start, length


def _centre(x, seg, n_seg):
    """x (S, M) minus its segment means."""
    sums = np.stack([np.bincount(seg, row, n_seg) for row in x])
    return x - (sums / np.bincount(seg, minlength=n_seg))[:, seg]


def resonance(
    harm, help, pain, reset, pairs=((0, 1), (2, 3)), key=None, num_shuffles: int = 200
) -> dict:
    """Resonance of pair pairs[0] with pairs[1] against the circular-shift control.

    Returns floats: "score", "per_series" {pain, harm, help: r}, and the control's
    "control_mean", "control_std", "z", "p_value", "num_shuffles" (see module docstring).
    key: jax PRNG key (or int seed) for the shifts.
    """
    reset = _with_env_axis(reset, 2)
    seg, start, length = _segments(reset)
    n_seg = len(start)

    def flat(s):  # (3, T, E) -> (3, E*T) env-major
        return np.swapaxes(s, 1, 2).reshape(len(s), -1)

    x = _centre(flat(pair_series(harm, help, pain, pairs[0])), seg, n_seg)
    y = _centre(flat(pair_series(harm, help, pain, pairs[1])), seg, n_seg)
    norm = np.sqrt(np.sum(x**2, 1) * np.sum(y**2, 1))  # shifts keep both sums
    defined = norm > 1e-12

    def corr(y_shifted):  # (..., 3, M) -> (..., 3) with NaN where undefined
        dots = np.sum(x * y_shifted, -1)
        return np.where(defined, dots / np.where(defined, norm, 1.0), np.nan)

    r = corr(y)
    score = float(np.mean(r[defined])) if defined.any() else math.nan
    key = jax.random.key(key) if isinstance(key, int) else key
    key = jax.random.key(0) if key is None else key
    raw = np.asarray(jax.random.randint(key, (num_shuffles, n_seg), 0, 2**30))
    offsets = np.where(length > 1, raw % np.maximum(length - 1, 1) + 1, 0)
    pos = np.arange(len(seg)) - start[seg]
    controls = np.empty((num_shuffles, 3))
    for lo in range(0, num_shuffles, 32):  # chunks bound memory at 32 x M indices
        shift = offsets[lo : lo + 32][:, seg]
        src = start[seg] + (pos + shift) % length[seg]
        controls[lo : lo + 32] = corr(y[:, src].transpose(1, 0, 2))
    control = (
        np.mean(controls[:, defined], axis=1)
        if defined.any()
        else np.full(num_shuffles, np.nan)
    )
    c_mean, c_std = float(np.mean(control)), float(np.std(control))
    return _json(
        {
            "score": score,
            "per_series": dict(zip(SERIES, r, strict=True)),
            "control_mean": c_mean,
            "control_std": c_std,
            "z": (score - c_mean) / c_std if c_std > 0 else math.nan,
            "p_value": (1 + np.sum(control >= score)) / (1 + num_shuffles)
            if not math.isnan(score)
            else math.nan,
            "num_shuffles": num_shuffles,
        }
    )


def empathy_report(
    harm,
    help,
    pain,
    reset,
    pairs=None,
    window: int = 5,
    key=None,
    eps: float = 0.0,
    num_shuffles: int = 200,
) -> dict:
    """Everything above as a JSON-ready dict of plain floats, ints, lists and None.

    pairs: ((a, b), (c, d)) for resonance; None means ((0, 1), (2, 3)) when there are at
    least 4 agents, else resonance is None. Matrices are nested lists [i][j] with None on
    the diagonal; retaliation matrices are [provoker][responder].
    """
    harm4 = _with_env_axis(harm, 4)
    t_len, n_env, n_agents = harm4.shape[:3]
    reset = _with_env_axis(reset, 2)
    rates = {name: pair_rates(ev, eps) for name, ev in (("harm", harm), ("help", help))}
    pain3 = _with_env_axis(pain, 3)
    if pairs is None and n_agents >= 4:
        pairs = ((0, 1), (2, 3))
    report = {
        "num_steps": t_len,
        "num_envs": n_env,
        "num_agents": n_agents,
        "num_episodes": int(np.sum(episode_ids(reset)[-1] + 1 - reset[0])),
        "window": window,
        "harm_rate": {"matrix": rates["harm"], "mean": _off_diagonal_mean(rates["harm"])},
        "help_rate": {"matrix": rates["help"], "mean": _off_diagonal_mean(rates["help"])},
        "pain": {
            "mean": pain3.mean(axis=(0, 1)),
            "in_pain_rate": (pain3 > 0).mean(axis=(0, 1)),
        },
        "retaliation": retaliation(harm, reset, window, eps),
    }
    report = _json(report)
    report["resonance"] = (
        None
        if pairs is None
        else {"pairs": [list(p) for p in pairs]}
        | resonance(harm, help, pain, reset, pairs, key, num_shuffles)
    )
    return report
