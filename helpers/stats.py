"""Uncertainty for alignment scores.

Confidence intervals are percentile bootstraps over items of the per-item mutual
k-NN overlap: neighbourhoods are computed once on the full item set and items are
resampled with replacement. (Resampling items *before* computing neighbourhoods
would make duplicated items each other's nearest neighbours and inflate scores.)
"""

from __future__ import annotations

import numpy as np


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


def _overlap_from_knn(knn_a: np.ndarray, knn_b: np.ndarray) -> np.ndarray:
    """Per-item |N_a(i) ∩ N_b(i)| / k from two [n, k] neighbour-index arrays."""
    n, k = knn_a.shape
    mask = np.zeros((n, n), dtype=bool)
    mask[np.arange(n)[:, None], knn_a] = True
    return mask[np.arange(n)[:, None], knn_b].sum(axis=1) / k


def permutation_null(
    a: np.ndarray, b: np.ndarray, k: int = 10, q: float = 0.95, n_perm: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Mutual k-NN of ``a`` vs ``b`` against a null that shuffles which row of ``b`` pairs with which row of ``a``.

    Returns ``score``, the null's ``null_mean`` and ``null_std``, ``z`` = (score − null_mean) / null_std,
    ``calibrated`` = (score − null_mean) / (1 − null_mean) (0 at chance, 1 for identical neighbourhoods)
    and a one-sided permutation ``p_value`` = (1 + #{null ≥ score}) / (1 + n_perm).
    """
    from helpers.alignment import knn_indices, prepare_features

    knn_a = knn_indices(prepare_features(a, q), k)
    knn_b = knn_indices(prepare_features(b, q), k)
    score = float(_overlap_from_knn(knn_a, knn_b).mean())
    rng = np.random.default_rng(seed)
    n = knn_a.shape[0]
    null = np.empty(n_perm)
    for t in range(n_perm):
        perm = rng.permutation(n)  # item i of a is paired with row perm[i] of b
        inverse = np.empty(n, dtype=int)
        inverse[perm] = np.arange(n)
        null[t] = _overlap_from_knn(knn_a, inverse[knn_b[perm]]).mean()
    null_mean, null_std = float(null.mean()), float(null.std(ddof=1))
    return {
        "score": score,
        "null_mean": null_mean,
        "null_std": null_std,
        "z": (score - null_mean) / null_std if null_std > 0 else float("nan"),
        "calibrated": (score - null_mean) / (1 - null_mean),
        "p_value": float((1 + np.sum(null >= score)) / (1 + n_perm)),
    }


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
