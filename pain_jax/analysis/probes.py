"""Theory-of-mind probes: how much of a target is decodable from agent B's hidden state.

Array interface (numpy or jax arrays; the leading axis N is samples, e.g. flattened
(time, env) steps recorded from rollouts):

- features: ``dict[str, X]``, each X float (N, D_name), e.g. ``{"hidden": h_B,
  "baseline": obs_B}``. The baseline set (the raw observation) is the control that
  tells whether the hidden state knows more than the input already shows.
- y: regression targets float (N,) (e.g. A's pain level), or classification labels
  bool / int (N,) in [0, K) (e.g. "B's next action raises A's pain", "A's next action").
- groups: optional int (N,) (e.g. episode id): the test split holds out whole groups,
  so neighbouring time steps of one episode never sit on both sides of the split.
- mask: optional bool (N,): only these samples are used (e.g. "A is in pain").

Probes (all fitted on the training split only, features standardised with training
statistics):

- ``linear``: regression -> closed-form ridge, its strength chosen from
  ``RIDGE_ALPHAS`` on an inner validation split of the training set; classification ->
  multinomial logistic regression with an L2 penalty, trained by minibatch Adam.
- ``mlp``: one hidden ReLU layer (64 units by default), minibatch Adam with a cosine
  learning-rate decay, a fixed number of steps, deterministic under the key.

Scores on the held-out split: R² (1 - SSE/SST, SST around the test mean, so a constant
predictor scores <= 0) for regression; accuracy and balanced accuracy (mean recall over
the classes present in the test split) for classification. Each probe is refitted on
training labels permuted at random (the shuffled-label control; scored on true test
labels), so "decodable" means well above both the control and the chance level.
Classification losses weight classes by inverse training frequency by default, so a
rare event is not ignored by predicting the majority class.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

RIDGE_ALPHAS = tuple(float(a) for a in 10.0 ** np.arange(-4, 3))  # x n_train
PROBES = ("linear", "mlp")
_MIN_SAMPLES = 8


def _rng(key) -> np.random.Generator:
    """numpy generator seeded by a jax key: splits and permutations of varying sizes
    then cost no jax compilation per size."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())


def split_indices(key, n: int, test_frac: float = 0.25, groups=None):
    """Train/test indices into range(n); returns (train int64 (n_tr,), test (n_te,)).

    Without groups: a random permutation, round(test_frac * n) samples held out.
    With groups int (n,): groups are shuffled and held out whole until at least
    test_frac * n samples are in the test split (at least one group on each side).
    Raises ValueError when no split is possible (n < 2 or a single group).
    """
    if groups is None:
        if n < 2:
            raise ValueError("need at least 2 samples to split")
        n_test = min(max(int(round(test_frac * n)), 1), n - 1)
        perm = _rng(key).permutation(n)
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])
    groups = np.asarray(groups)
    uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(uniq) < 2:
        raise ValueError("a group split needs at least 2 groups")
    order = _rng(key).permutation(len(uniq))
    reached = np.searchsorted(np.cumsum(counts[order]), test_frac * n)
    n_test_groups = min(max(int(reached) + 1, 1), len(uniq) - 1)
    is_test = np.isin(inverse, order[:n_test_groups])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def split_by(mask, names=("true", "false")) -> dict:
    """``{names[0]: mask, names[1]: ~mask}`` for ``probe_report_by`` (bool (N,))."""
    mask = np.asarray(mask, bool)
    return {names[0]: mask, names[1]: ~mask}


# --- scores -------------------------------------------------------------------------
def r2_score(y, pred) -> float:
    """1 - SSE/SST with SST around mean(y); NaN when y is constant."""
    y, pred = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    sst = np.sum((y - y.mean()) ** 2)
    if sst <= 1e-12 * max(1.0, float(np.sum(y**2))):
        return math.nan
    return float(1.0 - np.sum((y - pred) ** 2) / sst)


def accuracy(y, pred) -> float:
    return float(np.mean(np.asarray(y) == np.asarray(pred)))


def balanced_accuracy(y, pred) -> float:
    """Mean recall over the classes present in y."""
    y, pred = np.asarray(y), np.asarray(pred)
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


# --- fitting ------------------------------------------------------------------------
def _standardise(x_train, x_test):
    mean = x_train.mean(0, dtype=np.float64)
    std = x_train.std(0, dtype=np.float64)
    std = np.where(std > 1e-12, std, 1.0)  # constant features become 0, not inf
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(
        np.float32
    )


def _ridge_solver(x, y):
    """Returns solve(alpha) -> (W (D, S), b (S,)) for ridge on float64 x (n, D), y (n, S)
    with penalty alpha * n; the centred Gram matrix is computed once for all alphas."""
    xm, ym = x.mean(0), y.mean(0)
    xc = x - xm
    gram, xty = xc.T @ xc, xc.T @ (y - ym)

    def solve(alpha):
        w = np.linalg.solve(gram + alpha * len(x) * np.eye(x.shape[1]), xty)
        return w, ym - xm @ w

    return solve


def fit_ridge(x, y, key, groups=None, alphas=RIDGE_ALPHAS):
    """Ridge for each target column, alpha chosen by R² on an inner 20% validation split.

    x float (n, D) (standardised), y float (n, S). Returns (W (D, S), b (S,), alpha (S,)).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    try:
        inner_tr, inner_val = split_indices(key, len(x), 0.2, groups)
        solve = _ridge_solver(x[inner_tr], y[inner_tr])
        scores = np.array(
            [
                [
                    r2_score(y[inner_val, s], p)
                    for s, p in enumerate((x[inner_val] @ w + b).T)
                ]
                for w, b in map(solve, alphas)
            ]
        )  # (alphas, S)
        best = np.argmax(np.where(np.isnan(scores), -np.inf, scores), axis=0)
    except ValueError:  # too few samples/groups for an inner split: middle strength
        best = np.full(y.shape[1], len(alphas) // 2)
    chosen = np.asarray(alphas)[best]
    solve = _ridge_solver(x, y)
    fits = [solve(a) for a in chosen]
    w = np.stack([f[0][:, s] for s, f in enumerate(fits)], axis=1)
    b = np.array([f[1][s] for s, f in enumerate(fits)])
    return w, b, chosen


def _init(key, d, num_out, hidden):
    if hidden == 0:
        return {"w": jnp.zeros((d, num_out)), "b": jnp.zeros(num_out)}
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (d, hidden)) * jnp.sqrt(2.0 / d),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, num_out)) * jnp.sqrt(1.0 / hidden),
        "b2": jnp.zeros(num_out),
    }


def apply_probe(params, x):
    """Probe outputs (n, num_out) for params of one probe (no leading fit axis)."""
    if "w" in params:
        return x @ params["w"] + params["b"]
    return jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


@functools.partial(
    jax.jit, static_argnames=("num_out", "hidden", "regression", "steps", "batch")
)
def fit_sgd(key, x, ys, weights, n, *, num_out, hidden, regression, steps, batch, lr, l2):
    """Fit S probes at once (vmapped), one per target row, by minibatch Adam.

    x float32 (Np, D): features, rows >= n are padding and never sampled;
    ys (S, Np): float32 standardised targets (regression) or int32 labels;
    weights float32 (S, Np): per-sample loss weights; n int32 (): number of real rows.
    hidden = 0 gives a linear (logistic) probe. Returns params with leading axis S.
    Padding x to a few bucket sizes lets one compilation serve many sample counts.
    """

    def fit_one(key, y, w):
        k_init, k_steps = jax.random.split(key)
        params = _init(k_init, x.shape[1], num_out, hidden)
        opt = optax.adam(optax.cosine_decay_schedule(lr, steps))

        def loss(p, idx):
            out = apply_probe(p, x[idx])
            if regression:
                per = (out[:, 0] - y[idx]) ** 2
            else:
                per = optax.softmax_cross_entropy_with_integer_labels(out, y[idx])
            penalty = sum(jnp.sum(v**2) for k, v in p.items() if k.startswith("w"))
            return jnp.sum(per * w[idx]) / jnp.sum(w[idx]) + l2 * penalty

        def step(carry, k):
            p, s = carry
            idx = jax.random.randint(k, (batch,), 0, n)
            updates, s = opt.update(jax.grad(loss)(p, idx), s, p)
            return (optax.apply_updates(p, updates), s), None

        (params, _), _ = jax.lax.scan(
            step, (params, opt.init(params)), jax.random.split(k_steps, steps)
        )
        return params

    return jax.vmap(fit_one)(jax.random.split(key, ys.shape[0]), ys, weights)


def _pad(a, size):
    return np.concatenate([a, np.zeros((size - len(a), *a.shape[1:]), a.dtype)])


def _bucket(n):
    return max(256, 1 << (n - 1).bit_length())  # next power of two


# --- reports ------------------------------------------------------------------------
def _chance(kind, y_train, y_test):
    if kind == "regression":
        return {"r2": 0.0}
    majority = np.bincount(y_train).argmax()
    return {
        "accuracy": float(np.mean(y_test == majority)),
        "balanced_accuracy": 1.0 / len(np.unique(y_test)),
    }


def _scores(kind, y_true, pred, suffix=""):
    if kind == "regression":
        return {"r2" + suffix: r2_score(y_true, pred)}
    return {
        "accuracy" + suffix: accuracy(y_true, pred),
        "balanced_accuracy" + suffix: balanced_accuracy(y_true, pred),
    }


def _degenerate(kind, y_tr, y_te):
    """A reason why scores are undefined for this split, or None."""
    if kind == "regression":
        if np.ptp(y_tr) == 0:
            return "constant target on the training split"
        if np.ptp(y_te) == 0:
            return "constant target on the test split (R² undefined)"
        return None
    if len(np.unique(y_tr)) < 2:
        return "single class in the training split"
    if len(np.unique(y_te)) < 2:
        return "single class in the test split (balanced accuracy uninformative)"
    return None


def _nan_result(kind, probes, names):
    metrics = ["r2"] if kind == "regression" else ["accuracy", "balanced_accuracy"]
    entry = {m + s: math.nan for m in metrics for s in ("", "_shuffled")}
    return {f: {p: dict(entry) for p in probes} for f in names}


def probe_report(
    features: dict,
    y,
    kind: str = "regression",
    key=None,
    mask=None,
    test_frac: float = 0.25,
    groups=None,
    probes=PROBES,
    num_classes: int | None = None,
    mlp_hidden: int = 64,
    mlp_steps: int = 600,
    logistic_steps: int = 400,
    batch_size: int = 512,
    balance_classes: bool = True,
    ridge_alphas=RIDGE_ALPHAS,
) -> dict:
    """Probe scores with shuffled-label controls and chance levels (plain Python dict).

    features: dict name -> float (N, D); y: float (N,) for kind="regression", bool/int
    (N,) in [0, num_classes) for kind="classification"; key: a jax PRNG key (the split,
    the label permutation and every fit derive from it, so equal keys give equal
    reports); mask bool (N,) restricts the samples; groups int (N,) gives a group split.
    One split and one label permutation are shared by every feature set and probe.

    Returns ``{"kind", "n", "n_train", "n_test", "reason", "chance", "results"}`` where
    results[feature][probe] holds "r2" and "r2_shuffled" (regression) or "accuracy",
    "balanced_accuracy" and their "_shuffled" controls (classification), plus "alpha"
    for the ridge probe (ridge_alphas: candidate strengths x n_train; one value fixes
    it). Defaults: MLP 64 hidden units, 600 steps of batch 512 at learning rate 3e-3;
    logistic 400 steps at 3e-2, L2 1e-3; classes weighted by inverse training frequency
    (balance_classes). chance: {"r2": 0.0} or {"accuracy": test rate of the training
    majority class, "balanced_accuracy": 1 / classes in the test split}. When the scores
    are undefined (too few samples, one group, a constant target, a single class) every
    score is NaN and reason says why; reason is None otherwise.
    """
    if kind not in ("regression", "classification"):
        raise ValueError(f"kind must be 'regression' or 'classification', got {kind!r}")
    if key is None:
        raise ValueError("probe_report needs a jax PRNG key")
    if unknown := set(probes) - set(PROBES):
        raise ValueError(f"unknown probes {sorted(unknown)}; choose from {PROBES}")
    y = np.asarray(y)
    n_all = len(y)
    for name, x in features.items():
        if np.ndim(x) != 2 or len(x) != n_all:
            raise ValueError(
                f"features[{name!r}] must be (N={n_all}, D), got {np.shape(x)}"
            )
    regression = kind == "regression"
    if not regression and not np.array_equal(y, np.asarray(y).astype(np.int64)):
        raise ValueError("classification labels must be integers (or bools)")
    y = y.astype(np.float64) if regression else y.astype(np.int64)
    keep = np.ones(n_all, bool) if mask is None else np.asarray(mask, bool)
    idx = np.flatnonzero(keep)
    out = {"kind": kind, "n": int(len(idx)), "n_train": 0, "n_test": 0, "reason": None}
    out["chance"] = {"r2": 0.0} if regression else {}
    out["results"] = _nan_result(kind, probes, features)
    k_split, k_perm, k_fit = jax.random.split(key, 3)
    if len(idx) < _MIN_SAMPLES:
        out["reason"] = f"too few samples ({len(idx)} < {_MIN_SAMPLES})"
        return out
    sub_groups = None if groups is None else np.asarray(groups)[idx]
    try:
        tr, te = split_indices(k_split, len(idx), test_frac, sub_groups)
    except ValueError as err:
        out["reason"] = str(err)
        return out
    tr, te = idx[tr], idx[te]
    out["n_train"], out["n_test"] = int(len(tr)), int(len(te))
    y_tr, y_te = y[tr], y[te]
    out["reason"] = _degenerate(kind, y_tr, y_te)
    if out["reason"] is not None:
        return out
    out["chance"] = _chance(kind, y_tr, y_te)
    y_shuf = y_tr[_rng(k_perm).permutation(len(tr))]
    train_groups = None if groups is None else np.asarray(groups)[tr]
    if regression:
        mu, sd = y_tr.mean(), y_tr.std()
        targets = np.stack([(y_tr - mu) / sd, (y_shuf - mu) / sd]).astype(np.float32)
        weights = np.ones_like(targets)
        num_out = 1
    else:
        num_out = int(num_classes or max(y.max() + 1, 2))
        if y.min() < 0 or y.max() >= num_out:
            raise ValueError(f"labels must lie in [0, {num_out})")
        counts = np.bincount(y_tr, minlength=num_out)
        per_class = len(y_tr) / (np.count_nonzero(counts) * np.maximum(counts, 1))
        targets = np.stack([y_tr, y_shuf]).astype(np.int32)
        weights = per_class[targets] if balance_classes else np.ones(targets.shape)
        weights = weights.astype(np.float32)
    size = _bucket(len(tr))
    pad_t, pad_w = (np.stack([_pad(r, size) for r in a]) for a in (targets, weights))

    def predict(params, x_test):
        outs = np.asarray(jax.vmap(apply_probe, (0, None))(params, x_test))
        return outs[..., 0] * sd + mu if regression else outs.argmax(-1)

    for f_i, (name, x) in enumerate(features.items()):
        x_tr, x_te = _standardise(np.asarray(x)[tr], np.asarray(x)[te])
        for p_i, probe in enumerate(probes):
            entry = {}
            if probe == "linear" and regression:
                w, b, alphas = fit_ridge(
                    x_tr, targets.T, k_fit, train_groups, ridge_alphas
                )
                preds = (x_te.astype(np.float64) @ w + b).T * sd + mu
                entry["alpha"] = float(alphas[0])
            else:
                linear = probe == "linear"
                params = fit_sgd(
                    jax.random.fold_in(k_fit, f_i * len(probes) + p_i),
                    _pad(x_tr, size),
                    pad_t,
                    pad_w,
                    np.int32(len(tr)),
                    num_out=num_out,
                    hidden=0 if linear else mlp_hidden,
                    regression=regression,
                    steps=logistic_steps if linear else mlp_steps,
                    batch=batch_size,
                    lr=3e-2 if linear else 3e-3,
                    l2=1e-3 if linear else 1e-5,
                )
                preds = predict(params, x_te)
            entry.update(_scores(kind, y_te, preds[0]))
            entry.update(_scores(kind, y_te, preds[1], "_shuffled"))
            out["results"][name][probe] = entry
    return out


def probe_report_by(features: dict, y, conditions: dict, key=None, mask=None, **kwargs):
    """probe_report per condition: {name: report restricted to conditions[name] & mask}.

    conditions: dict name -> bool (N,), e.g. ``split_by(pain_A > 0, ("pain", "calm"))``.
    Every condition uses the same key, so splits differ only through the masks.
    """
    base = np.ones(len(np.asarray(y)), bool) if mask is None else np.asarray(mask, bool)
    return {
        name: probe_report(
            features, y, key=key, mask=base & np.asarray(c, bool), **kwargs
        )
        for name, c in conditions.items()
    }
