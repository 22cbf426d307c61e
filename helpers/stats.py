"""Uncertainty for alignment scores.

Confidence intervals are percentile bootstraps over items of the per-item mutual
k-NN overlap: neighbourhoods are computed once on the full item set and items are
resampled with replacement. (Resampling items *before* computing neighbourhoods
would make duplicated items each other's nearest neighbours and inflate scores.)

Significance of one score: a permutation null that re-pairs the items of one space with
random items of the other (:func:`permutation_null`, vectorised in :func:`null_overlaps`).
Differences between conditions scored on the same items: paired bootstrap CI and a sign-flip
test (:func:`paired_difference`). Many tests at once: Holm–Bonferroni (:func:`holm`), and
:func:`stars` for the usual markers.
"""

from __future__ import annotations

import numpy as np

from helpers.alignment import knn_indices, overlap_from_knn, prepare_features


def bootstrap_ci(
    per_item: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``per_item`` values."""
    values = np.asarray(per_item, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"per_item must be a non-empty 1-D array, got shape {values.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_boot, values.size))
    means = values[idx].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def null_overlaps(
    knn_a: np.ndarray,
    knn_b: np.ndarray,
    n_perm: int = 1000,
    seed: int = 0,
    chunk: int = 256,
    perms: np.ndarray | None = None,
) -> np.ndarray:
    """Mutual k-NN scores of random re-pairings of the rows of ``b`` with those of ``a``.

    ``knn_a``, ``knn_b``: [n, k] neighbour indices of each space (computed once; a re-pairing
    only relabels ``b``'s items). Row t of ``perms`` ([n_perm, n], default ``n_perm`` seeded
    random permutations) pairs item i of ``a`` with row ``perms[t, i]`` of ``b``, i.e. scores
    ``a`` against ``b[perms[t]]``. Vectorised over permutations, ``chunk`` at a time.
    """
    n, k = knn_a.shape
    if knn_b.shape != (n, k):
        raise ValueError(f"neighbour arrays must have equal shapes, got {knn_a.shape} and {knn_b.shape}")
    if perms is None:
        rng = np.random.default_rng(seed)
        perms = rng.permuted(np.tile(np.arange(n), (int(n_perm), 1)), axis=1)
    perms = np.asarray(perms)
    if perms.ndim != 2 or perms.shape[1] != n:
        raise ValueError(f"perms must be [n_perm, {n}], got shape {perms.shape}")
    mask_a = np.zeros((n, n), dtype=bool)
    mask_a[np.arange(n)[:, None], knn_a] = True
    out = np.empty(perms.shape[0])
    rows = np.arange(n)[None, :, None]
    for start in range(0, perms.shape[0], chunk):
        perm = perms[start : start + chunk]
        m = perm.shape[0]
        inverse = np.argsort(perm, axis=1)
        # neighbours of the b-row paired with item i, as items of a: inverse[knn_b[perm[i]]]
        nb = np.take_along_axis(inverse, knn_b[perm].reshape(m, -1), axis=1).reshape(m, n, k)
        out[start : start + m] = mask_a[rows, nb].sum(axis=(1, 2)) / (n * k)
    return out


def null_summary(score: float, null: np.ndarray) -> dict[str, float]:
    """Observed ``score`` against samples of its null: mean, std, z, calibrated score and one-sided p.

    ``calibrated`` = (score − null_mean) / (1 − null_mean): 0 at chance, 1 at the maximum score 1.
    ``p_value`` = (1 + #{null ≥ score}) / (1 + n_null), never 0.
    """
    null = np.asarray(null, dtype=np.float64)
    null_mean, null_std = float(null.mean()), float(null.std(ddof=1)) if null.size > 1 else 0.0
    return {
        "score": float(score),
        "null_mean": null_mean,
        "null_std": null_std,
        "z": (score - null_mean) / null_std if null_std > 0 else float("nan"),
        "calibrated": (score - null_mean) / (1 - null_mean) if null_mean < 1 else float("nan"),
        "p_value": float((1 + np.sum(null >= score - 1e-12)) / (1 + null.size)),
    }


def permutation_null(
    a: np.ndarray, b: np.ndarray, k: int = 10, q: float = 0.95, n_perm: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Mutual k-NN of ``a`` vs ``b`` against a null that shuffles which row of ``b`` pairs with which row of ``a``.

    Returns ``score``, the null's ``null_mean`` and ``null_std``, ``z`` = (score − null_mean) / null_std,
    ``calibrated`` = (score − null_mean) / (1 − null_mean) (0 at chance, 1 for identical neighbourhoods)
    and a one-sided permutation ``p_value`` = (1 + #{null ≥ score}) / (1 + n_perm).
    """
    knn_a = knn_indices(prepare_features(a, q), k)
    knn_b = knn_indices(prepare_features(b, q), k)
    score = float(overlap_from_knn(knn_a, knn_b).mean())
    return null_summary(score, null_overlaps(knn_a, knn_b, n_perm=n_perm, seed=seed))


def paired_difference(
    per_item_1: np.ndarray,
    per_item_2: np.ndarray,
    n_boot: int = 1000,
    n_perm: int = 10000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Compare two conditions scored on the same items (e.g. SEE vs NONE against one encoder).

    Inputs are per-item values (e.g. :func:`helpers.alignment.mutual_knn_per_item`) in the same
    item order. Returns the mean difference ``diff`` (1 − 2), its percentile-bootstrap CI over items
    and a two-sided sign-flip permutation ``p_value`` (exchangeability of the two conditions per item).
    """
    d = np.asarray(per_item_1, dtype=np.float64) - np.asarray(per_item_2, dtype=np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"per-item inputs must be non-empty 1-D arrays of equal length, got {d.shape}")
    low, high = bootstrap_ci(d, n_boot=n_boot, level=level, seed=seed)
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, d.size))
    null = np.abs((signs * d).mean(axis=1))
    observed = abs(d.mean())
    p = float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_perm))
    return {"diff": float(d.mean()), "ci_low": low, "ci_high": high, "p_value": min(p, 1.0)}


def holm(p_values) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, family-wise error control), in input order.

    The i-th smallest of m p-values is multiplied by (m − i + 1), made non-decreasing in rank and
    capped at 1; reject at level α where the adjusted value ≤ α. NaNs stay NaN and do not count in m.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p[finite][(p[finite] < 0) | (p[finite] > 1)][:5]}")
    out = np.full(p.shape, np.nan)
    vals = p[finite]
    m = vals.size
    if m == 0:
        return out
    order = np.argsort(vals, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(vals[order] * (m - np.arange(m))))
    res = np.empty(m)
    res[order] = adjusted
    out[finite] = res
    return out


def stars(p: float) -> str:
    """Significance marker: ``***`` p < 0.001, ``**`` < 0.01, ``*`` < 0.05, ``n.s.`` otherwise (``""`` for NaN)."""
    if p is None or np.isnan(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."
