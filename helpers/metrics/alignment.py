"""Kernel alignment between two sets of features over the same items.

Mutual k-NN follows the Platonic Representation Hypothesis reference code
(Huh et al., 2024): clamp every feature to ±q-quantile of its magnitude (the
per-row q-quantiles of |x|, averaged over rows), L2-normalise rows, take each
item's k nearest neighbours by cosine similarity excluding itself, and score the
mean fraction of neighbours the two spaces share.
"""

from __future__ import annotations

import numpy as np


def prepare_features(x: np.ndarray, q: float = 0.95) -> np.ndarray:
    """Outlier clamp at the ``q`` quantile of |x| (``q=1`` disables it), then row L2 normalisation."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [items, dims], got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        raise ValueError(f"features contain NaN/inf in rows {bad[:10].tolist()}")
    if q < 1:
        q_val = np.quantile(np.abs(x), q, axis=1).mean()
        x = np.clip(x, -q_val, q_val)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def knn_indices(x: np.ndarray, k: int) -> np.ndarray:
    """Indices [n, k] of each row's k most cosine-similar other rows (rows must be normalised)."""
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, n_items-1] = [1, {n - 1}], got k={k}")
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    # stable sort on the negated similarity: ties resolve to the lower index, deterministically
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def overlap_from_knn(knn_a: np.ndarray, knn_b: np.ndarray) -> np.ndarray:
    """Per-item |N_a(i) ∩ N_b(i)| / k from two [n, k] neighbour-index arrays (per-item mutual k-NN)."""
    n, k = knn_a.shape
    mask = np.zeros((n, n), dtype=bool)
    mask[np.arange(n)[:, None], knn_a] = True
    return mask[np.arange(n)[:, None], knn_b].sum(axis=1) / k


def mutual_knn_per_item(a: np.ndarray, b: np.ndarray, k: int = 10, q: float = 0.95) -> np.ndarray:
    """Per item, the fraction of its k nearest neighbours in ``a`` that are also among them in ``b``."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"both feature sets must cover the same items: {a.shape[0]} vs {b.shape[0]} rows")
    return overlap_from_knn(knn_indices(prepare_features(a, q), k), knn_indices(prepare_features(b, q), k))


def mutual_knn(a: np.ndarray, b: np.ndarray, k: int = 10, q: float = 0.95) -> float:
    """Mutual k-NN alignment in [0, 1]: the mean of :func:`mutual_knn_per_item`."""
    return float(mutual_knn_per_item(a, b, k, q).mean())


def mutual_knn_chance(n_items: int, k: int) -> float:
    """Expected mutual k-NN score of two unrelated kernels: k / (n - 1)."""
    if not 1 <= k < n_items:
        raise ValueError(f"k must be in [1, n_items-1], got k={k}, n_items={n_items}")
    return k / (n_items - 1)


def layer_mean(per_layer: np.ndarray, first_layer: int = 0) -> np.ndarray:
    """Mean over the layer axis of [items, layers, hidden] from ``first_layer`` on → [items, hidden].

    With representations that include the embedding output at index 0, ``first_layer=1``
    leaves it out.
    """
    if per_layer.ndim != 3:
        raise ValueError(f"expected [items, layers, hidden], got shape {per_layer.shape}")
    return per_layer[:, first_layer:, :].mean(axis=1)


def match_rows(ids_a: list[str], ids_b: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into ``a`` and ``b`` of the items both cover, in ``a``'s order."""
    pos_b = {item: j for j, item in enumerate(ids_b)}
    pairs = [(i, pos_b[item]) for i, item in enumerate(ids_a) if item in pos_b]
    if not pairs:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    ia, ib = zip(*pairs)
    return np.asarray(ia), np.asarray(ib)


# --------------------------------------------------------------------------------------
# Kernel metrics beside mutual k-NN (robustness checks), after the Platonic Representation
# Hypothesis reference metrics: unbiased CKA with a linear kernel and CKNNA.
# --------------------------------------------------------------------------------------


def hsic_unbiased(kernel_1: np.ndarray, kernel_2: np.ndarray) -> float:
    """Unbiased HSIC estimator of two [n, n] kernels (Song et al., 2012, eq. 5), diagonals ignored.

    Needs n > 3. Kernels need not be symmetric (CKNNA's masked kernels are not).
    """
    k_mat = np.array(kernel_1, dtype=np.float64)
    l_mat = np.array(kernel_2, dtype=np.float64)
    m = k_mat.shape[0]
    if k_mat.shape != (m, m) or l_mat.shape != (m, m):
        raise ValueError(f"kernels must be square and of equal size, got {k_mat.shape} and {l_mat.shape}")
    if m <= 3:
        raise ValueError(f"unbiased HSIC needs more than 3 items, got {m}")
    np.fill_diagonal(k_mat, 0.0)
    np.fill_diagonal(l_mat, 0.0)
    trace_term = float(np.sum(k_mat * l_mat.T))
    sums_term = float(k_mat.sum() * l_mat.sum()) / ((m - 1) * (m - 2))
    cross_term = 2.0 * float(k_mat.sum(axis=0) @ l_mat.sum(axis=1)) / (m - 2)  # = 2·sum(K @ L) / (m-2)
    return (trace_term + sums_term - cross_term) / (m * (m - 3))


def _normalised_hsic(hsic_12: float, hsic_11: float, hsic_22: float) -> float:
    denom = np.sqrt(max(hsic_11, 0.0) * max(hsic_22, 0.0))
    return float(hsic_12 / denom) if denom > 0 else float("nan")


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"both feature sets must cover the same items: {a.shape[0]} vs {b.shape[0]} rows")
    return a, b


def unbiased_cka(a: np.ndarray, b: np.ndarray, q: float = 0.95) -> float:
    """Centred kernel alignment of the linear kernels of ``a`` and ``b`` with the unbiased HSIC.

    Features are prepared as for mutual k-NN (:func:`prepare_features`). 1 for kernels that
    agree up to scale; about 0 for unrelated ones (it can dip slightly below 0).
    """
    a, b = _check_pair(a, b)
    xa, xb = prepare_features(a, q), prepare_features(b, q)
    k_mat, l_mat = xa @ xa.T, xb @ xb.T
    return _normalised_hsic(hsic_unbiased(k_mat, l_mat), hsic_unbiased(k_mat, k_mat), hsic_unbiased(l_mat, l_mat))


def _knn_mask(x: np.ndarray, k: int) -> np.ndarray:
    n = x.shape[0]
    mask = np.zeros((n, n), dtype=bool)
    mask[np.arange(n)[:, None], knn_indices(x, k)] = True
    return mask


def cknna(a: np.ndarray, b: np.ndarray, k: int = 10, q: float = 0.95) -> float:
    """CKNNA: CKA restricted to pairs that are mutual k nearest neighbours in both spaces.

    With each space's linear kernel K, L and k-NN masks M_a, M_b (self excluded), the score is
    HSIC(M∘K, M∘L) / sqrt(HSIC(M_a∘K, M_a∘K) · HSIC(M_b∘L, M_b∘L)) with M = M_a ∧ M_b and the
    unbiased HSIC. 1 for identical neighbourhoods and kernels, about 0 for unrelated ones.
    """
    a, b = _check_pair(a, b)
    if k < 2:
        raise ValueError(f"CKNNA needs k >= 2, got k={k}")
    xa, xb = prepare_features(a, q), prepare_features(b, q)
    k_mat, l_mat = xa @ xa.T, xb @ xb.T
    mask_a, mask_b = _knn_mask(xa, k), _knn_mask(xb, k)
    both = mask_a & mask_b
    sim_ab = hsic_unbiased(both * k_mat, both * l_mat)
    sim_aa = hsic_unbiased(mask_a * k_mat, mask_a * k_mat)
    sim_bb = hsic_unbiased(mask_b * l_mat, mask_b * l_mat)
    return _normalised_hsic(sim_ab, sim_aa, sim_bb)


def _mutual_knn_metric(a: np.ndarray, b: np.ndarray, k: int, q: float) -> float:
    return mutual_knn(a, b, k, q)


def _cknna_metric(a: np.ndarray, b: np.ndarray, k: int, q: float) -> float:
    return cknna(a, b, k, q)


def _unbiased_cka_metric(a: np.ndarray, b: np.ndarray, k: int, q: float) -> float:
    return unbiased_cka(a, b, q)  # no neighbourhood: k is unused


METRICS = {
    "mutual_knn": _mutual_knn_metric,
    "cknna": _cknna_metric,
    "unbiased_cka": _unbiased_cka_metric,
}
"""Alignment metrics by name: ``fn(a, b, k, q) -> float``."""

METRIC_USES_K = {"mutual_knn": True, "cknna": True, "unbiased_cka": False}
METRIC_LABELS = {"mutual_knn": "mutual k-NN", "cknna": "CKNNA", "unbiased_cka": "unbiased CKA"}


def check_metric(metric: str) -> str:
    """``metric`` if it is a known metric name, else a ValueError listing the names."""
    if metric not in METRICS:
        raise ValueError(f"unknown alignment metric {metric!r}; known metrics: {', '.join(METRICS)}")
    return metric


def score(metric: str, a: np.ndarray, b: np.ndarray, k: int = 10, q: float = 0.95) -> float:
    """Alignment of ``a`` and ``b`` (rows = the same items) under the metric named ``metric``."""
    return float(METRICS[check_metric(metric)](a, b, k, q))


def metric_chance(metric: str, n_items: int, k: int) -> float:
    """Expected score of unrelated kernels: k/(n−1) for mutual k-NN, 0 for CKNNA and CKA."""
    return mutual_knn_chance(n_items, k) if check_metric(metric) == "mutual_knn" else 0.0
