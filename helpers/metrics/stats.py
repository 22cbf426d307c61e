"""Uncertainty for alignment scores.

Confidence intervals of a score and of differences between conditions scored on the same items
(:func:`score_ci`, :func:`paired_difference`) come from the dyadic-robust standard error of
:mod:`helpers.metrics.knn_inference`: a mutual k-NN score is a mean over pairs of items, and pairs that
share an item are dependent, so per-item values cannot be resampled or sign-flipped as if they were
independent (that under-states the error ≈ 1.3×; :mod:`helpers.analyses.calibration` measures it).

Significance of one score against chance: a permutation null that re-pairs the items of one space
with random items of the other (:func:`permutation_null`, vectorised in :func:`null_overlaps`),
exact because it permutes whole items. Many tests at once: Holm–Bonferroni (:func:`holm`), and
:func:`stars` and :func:`p_text` for reading them.
"""

from __future__ import annotations

import numpy as np

from helpers.metrics.alignment import knn_indices, overlap_from_knn, prepare_features
from helpers.metrics.knn_inference import Overlaps, inference


def score_ci(overlaps: Overlaps, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of one mutual k-NN score from its hits against the encoder graph.

    The dyadic-robust standard error of :mod:`helpers.metrics.knn_inference` (items take part in each
    other's neighbourhoods) with a t interval on n − 1 degrees of freedom.
    """
    r = inference(overlaps, level)
    return r["ci_low"], r["ci_high"]


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


def paired_difference(a: Overlaps, b: Overlaps, level: float = 0.95) -> dict[str, float]:
    """Compare two conditions scored against the same encoder graph on the same items (e.g. SEE vs NONE).

    ``a``, ``b``: :class:`~helpers.metrics.knn_inference.Overlaps` (``EncoderSpace.overlaps``), or any
    contrasts on one graph. Returns ``diff`` (a − b), its dyadic-robust ``se``, the t interval
    ``ci_low``/``ci_high`` and the two-sided ``p_value`` (:func:`helpers.metrics.knn_inference.inference`).
    """
    if not isinstance(a, Overlaps) or not isinstance(b, Overlaps):
        raise TypeError(
            "paired_difference compares Overlaps (EncoderSpace.overlaps), not per-item arrays: "
            "per-item overlaps are not independent, their mean's error needs the neighbour graph"
        )
    r = inference(a - b, level)
    return {k: r[k] for k in ("diff", "se", "ci_low", "ci_high", "p_value")}


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


def p_text(p: float, n_draws: int | None = None) -> str:
    """A p-value for reading: ``≤ 1e-4`` at the floor of a test with ``n_draws`` permutations
    (p = 1/(n_draws + 1) cannot be smaller), 2 significant digits otherwise, ``–`` for NaN."""
    if p is None or np.isnan(p):
        return "–"
    if n_draws and p <= 1.0 / (n_draws + 1) + 1e-15:
        return f"≤ {1.0 / n_draws:.0e}".replace("e-0", "e-")
    return f"{p:.2g}"
