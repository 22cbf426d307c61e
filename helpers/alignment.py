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


def mutual_knn_per_item(a: np.ndarray, b: np.ndarray, k: int = 10, q: float = 0.95) -> np.ndarray:
    """Per item, the fraction of its k nearest neighbours in ``a`` that are also among them in ``b``."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"both feature sets must cover the same items: {a.shape[0]} vs {b.shape[0]} rows")
    na = knn_indices(prepare_features(a, q), k)
    nb = knn_indices(prepare_features(b, q), k)
    n = a.shape[0]
    mask_a = np.zeros((n, n), dtype=bool)
    mask_b = np.zeros((n, n), dtype=bool)
    rows = np.arange(n)[:, None]
    mask_a[rows, na] = True
    mask_b[rows, nb] = True
    return (mask_a & mask_b).sum(axis=1) / k


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


def alignment_table(
    llm_reps: dict[str, tuple[list[str], np.ndarray]],
    encoder_feats: dict[str, tuple[str, list[str], np.ndarray]],
    k: int = 10,
    q: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> "pd.DataFrame":
    """Mutual k-NN for every (LLM representation, encoder) pair over their shared items.

    ``llm_reps``: name → (ids, features); ``encoder_feats``: name → (modality, ids, features).
    Returns one row per pair with the score, a bootstrap CI over items and the chance level.
    """
    import pandas as pd

    from helpers.stats import bootstrap_ci

    rows = []
    for rep_name, (rep_ids, rep) in llm_reps.items():
        for enc_name, (modality, enc_ids, feats) in encoder_feats.items():
            ia, ib = match_rows(rep_ids, enc_ids)
            if len(ia) <= k:
                raise ValueError(
                    f"{rep_name} × {enc_name}: only {len(ia)} shared items, need more than k={k}; "
                    "use more items or a smaller k"
                )
            per_item = mutual_knn_per_item(rep[ia], feats[ib], k=k, q=q)
            low, high = bootstrap_ci(per_item, n_boot=n_boot, seed=seed)
            rows.append(
                {
                    "representation": rep_name,
                    "encoder": enc_name,
                    "modality": modality,
                    "n_items": len(ia),
                    "k": k,
                    "score": float(per_item.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "chance": mutual_knn_chance(len(ia), k),
                }
            )
    return pd.DataFrame(rows)
