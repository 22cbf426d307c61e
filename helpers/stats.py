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
