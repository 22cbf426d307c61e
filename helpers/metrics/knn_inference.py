"""Standard errors, intervals and tests for mutual k-NN scores whose items depend on each other.

A mutual k-NN score of an LLM space X against an encoder space E is a sum over *pairs* of items:

    S = 1/(n·k) · Σ_i Σ_{j ∈ N_E(i)} 1[j ∈ N_X(i)]

Item i takes part in the pairs of its own row (its k encoder neighbours) *and* in every pair where
it is somebody else's neighbour. Two pairs that share an item are dependent; the per-item overlaps
o_i = (1/k) Σ_j … are therefore not independent, and a bootstrap or a sign-flip test over them
(treating o_i as i.i.d.) under-states the error: in the package's calibration worlds
(:mod:`helpers.analyses.calibration`) its standard error is ≈ 0.75 of the spread across independent item
sets and it rejects a true null 11–17 % of the time at α = 0.05.

This module treats the score as what it is, a mean over dyads, and estimates its variance with the
dyadic-robust ("item-clustered") sandwich (Fafchamps & Gubert 2007; Aronow, Samii & Assenova 2015,
*Political Analysis*) over the n·k pairs the score is made of (each item with each of its encoder
neighbours): the sum of products of centred pair values over every two pairs that share an item,

    V = Σ_i G_i² − Σ_s ê_s² − Σ_s ê_s ê_s̄,     G_i = Σ_{s ∋ i} ê_s,

where ê_s is pair s's value minus the score, G_i sums the pairs item i takes part in (as the item
and as a neighbour), and the two subtracted sums remove what Σ G_i² counts twice (a pair with
itself, and with its mirror s̄ = (j, i) where i is also among j's neighbours). Var(S) = V / (n·k)².
Everything is O(n·k): no n × n matrix.

A *contrast* is any linear combination of scores against the **same** encoder graph on the same
items (SEE − NONE, generative − single pass, reading − writing effects): its pair values are the
same combination of the hit indicators, so one estimator serves them all (:class:`Overlaps`
carries the hits and the graph, with arithmetic). Several contrasts at once get their joint
covariance (:func:`covariance`), which the selection-corrected max test of the cue search uses.

Intervals and tests use Student's t on the variance estimate's effective degrees of freedom
(:func:`effective_df`, ≈ n/5: measured, the estimate is far less stable than n independent terms),
and the variance carries the matching small-sample factor. The exact re-pairing null of one
score against chance (:func:`helpers.metrics.stats.permutation_null`) is unaffected: it permutes whole
items, so it is exact whatever the dependence.

numpy and scipy only; a leaf beside :mod:`helpers.metrics.alignment`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _sp


@dataclass(frozen=True, eq=False)
class Overlaps:
    """Pair values of one score or contrast against an encoder graph.

    ``hits`` [n, k] float: for item i and its r-th encoder neighbour ``graph[i, r]``, 1 when that
    neighbour is among i's k neighbours in the LLM space (0 otherwise), or a linear combination of
    such indicators. ``graph`` [n, k] int: the encoder's neighbour rows. The score (or contrast) is
    ``hits.mean()``; the per-item values are ``hits.mean(axis=1)``.
    """

    hits: np.ndarray
    graph: np.ndarray

    def __post_init__(self) -> None:
        hits, graph = np.asarray(self.hits, dtype=np.float64), np.asarray(self.graph)
        if hits.ndim != 2 or graph.shape != hits.shape:
            raise ValueError(f"hits and graph must be [n, k] arrays of one shape, got {hits.shape} and {graph.shape}")
        object.__setattr__(self, "hits", hits)
        object.__setattr__(self, "graph", graph)

    @classmethod
    def from_knn(cls, knn_llm: np.ndarray, knn_enc: np.ndarray) -> Overlaps:
        """The hits of an LLM's [n, k] neighbour rows at each of the encoder's neighbour slots."""
        knn_llm, knn_enc = np.asarray(knn_llm), np.asarray(knn_enc)
        if knn_llm.shape != knn_enc.shape:
            raise ValueError(f"neighbour arrays must have equal shapes, got {knn_llm.shape} and {knn_enc.shape}")
        n = knn_llm.shape[0]
        member = np.zeros((n, n), dtype=bool) if n <= 20000 else None
        if member is not None:
            member[np.arange(n)[:, None], knn_llm] = True
            hits = member[np.arange(n)[:, None], knn_enc]
        else:  # row by row, O(n·k) memory
            hits = np.stack([np.isin(knn_enc[i], knn_llm[i]) for i in range(n)])
        return cls(hits.astype(np.float64), knn_enc)

    @property
    def n(self) -> int:
        return self.hits.shape[0]

    @property
    def per_item(self) -> np.ndarray:
        """Per item, the mean of its pair values (its overlap, for a single score)."""
        return self.hits.mean(axis=1)

    def mean(self) -> float:
        return float(self.hits.mean())

    def _check(self, other: Overlaps) -> None:
        if not isinstance(other, Overlaps):
            raise TypeError(f"can only combine Overlaps with Overlaps, got {type(other).__name__}")
        if other.graph.shape != self.graph.shape or not np.array_equal(other.graph, self.graph):
            raise ValueError(
                "contrasts need the same encoder graph on the same items (same encoder, same item order, same k)"
            )

    def __add__(self, other: Overlaps) -> Overlaps:
        self._check(other)
        return Overlaps(self.hits + other.hits, self.graph)

    def __sub__(self, other: Overlaps) -> Overlaps:
        self._check(other)
        return Overlaps(self.hits - other.hits, self.graph)

    def __mul__(self, factor: float) -> Overlaps:
        return Overlaps(self.hits * float(factor), self.graph)

    __rmul__ = __mul__

    def __neg__(self) -> Overlaps:
        return Overlaps(-self.hits, self.graph)

    def zero(self) -> Overlaps:
        """The contrast with every pair value 0 (a score of 0 on this graph)."""
        return Overlaps(np.zeros_like(self.hits), self.graph)


def covariance(contrasts: list[Overlaps] | tuple[Overlaps, ...]) -> np.ndarray:
    """[m, m] dyadic-robust covariance of the means of ``m`` contrasts on one encoder graph."""
    if not contrasts:
        raise ValueError("need at least one contrast")
    first = contrasts[0]
    for c in contrasts[1:]:
        first._check(c)
    graph = first.graph
    n, k = graph.shape
    if n < 3:
        raise ValueError(f"need at least 3 items for a variance, got {n}")
    values = np.stack([c.hits for c in contrasts])  # [m, n, k]
    m = values.shape[0]
    flat = values.reshape(m, -1)
    centred = flat - flat.mean(axis=1, keepdims=True)  # each slot's value about the contrast's mean
    rows = np.repeat(np.arange(n), k)
    cols = graph.ravel()
    # G_i: the centred sum of every slot item i takes part in, as the row and as the neighbour
    g = centred.reshape(m, n, k).sum(axis=2) + np.stack([np.bincount(cols, weights=f, minlength=n) for f in centred])
    total = g @ g.T
    same = centred @ centred.T  # a slot with itself: counted twice in Σ G_i² (once per item)
    # a slot (i, j) with its mirror (j, i), where i is among j's encoder neighbours: also counted twice
    keys = rows * n + cols
    order = np.argsort(keys)
    mirror_keys = cols * n + rows
    pos = np.minimum(np.searchsorted(keys[order], mirror_keys), keys.size - 1)
    found = keys[order][pos] == mirror_keys
    mirror = np.zeros_like(centred)
    mirror[:, found] = centred[:, order[pos[found]]]
    cross = centred @ mirror.T
    v = total - same - cross
    return v / float(n * k) ** 2


#: Effective degrees of freedom per item of the variance estimate. The estimate sums strongly overlapping
#: item terms (every pair enters two), so it is far less stable than n independent squares: measured as
#: 2 / CV² of the estimate across item sets in the calibration worlds, about n/4 to n/5 for k from 5 to 20
#: and n from 60 to 1,000 (README, statistics).
DF_PER_ITEM = 0.2


def effective_df(n: int) -> float:
    """Degrees of freedom of the t reference: :data:`DF_PER_ITEM` · n (at least 2)."""
    return max(2.0, DF_PER_ITEM * n)


def sampling_covariance(contrasts: list[Overlaps] | tuple[Overlaps, ...]) -> np.ndarray:
    """:func:`covariance` with the small-sample factor m / (m − 1) of a sum of m = :func:`effective_df` + 1
    effectively independent terms: what every interval and test of the package uses."""
    m = effective_df(contrasts[0].n) + 1
    return covariance(contrasts) * m / (m - 1)


def standard_error(contrast: Overlaps) -> float:
    """Dyadic-robust standard error of ``contrast.mean()`` (0 when every pair value is the same), from
    :func:`sampling_covariance`."""
    return float(np.sqrt(max(sampling_covariance([contrast])[0, 0], 0.0)))


def inference(contrast: Overlaps, level: float = 0.95, null: float = 0.0) -> dict[str, float]:
    """Estimate, standard error, t interval (df = :func:`effective_df`) and two-sided p against ``null``.

    Keys: ``diff`` (the contrast's mean), ``se``, ``ci_low``, ``ci_high``, ``p_value``, ``df``.
    With a standard error of 0 the interval is the point and p is 1 at the null, else 0.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    est, se, df = contrast.mean(), standard_error(contrast), effective_df(contrast.n)
    half = float(_sp.t.ppf(0.5 + level / 2, df)) * se
    if se > 0:
        p = float(2 * _sp.t.sf(abs(est - null) / se, df))
    else:
        p = 1.0 if np.isclose(est, null, atol=1e-15) else 0.0
    return {"diff": est, "se": se, "ci_low": est - half, "ci_high": est + half, "p_value": p, "df": float(df)}


def max_mean_null(contrasts: list[Overlaps], n_draws: int = 10000, seed: int = 0) -> tuple[float, np.ndarray, float]:
    """``(observed, null, p)`` for the largest of several contrast means, corrected for picking it.

    Under the null every contrast has mean 0; their estimates are jointly distributed with the dyadic
    covariance (:func:`covariance`, with the small-sample factor), as a multivariate t on
    :func:`effective_df` degrees of freedom since that covariance is estimated; the null of the largest
    is the max over ``n_draws`` seeded draws of it. One-sided: ``p = (1 + #{null ≥ observed}) / (1 + n_draws)``.
    """
    means = np.array([c.mean() for c in contrasts])
    m = effective_df(contrasts[0].n) + 1
    cov = sampling_covariance(contrasts)
    cov = (cov + cov.T) / 2
    w, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(w, 0.0, None))
    rng = np.random.default_rng(seed)
    # multivariate t on the variance estimate's degrees of freedom: the covariance is estimated, not known
    scale = np.sqrt(rng.chisquare(m - 1, int(n_draws)) / (m - 1))
    null = ((rng.standard_normal((int(n_draws), len(contrasts))) @ root.T) / scale[:, None]).max(axis=1)
    observed = float(means.max())
    return observed, null, float((1 + np.sum(null >= observed - 1e-12)) / (1 + null.size))


__all__ = [
    "DF_PER_ITEM",
    "Overlaps",
    "covariance",
    "effective_df",
    "inference",
    "max_mean_null",
    "sampling_covariance",
    "standard_error",
]
