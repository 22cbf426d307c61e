"""helpers.metrics.knn_inference: the dyadic-robust variance of a mutual k-NN score, against a dense
computation written from its definition, hand-worked cases, and simulated item sets."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.analyses.calibration import World
from helpers.metrics.alignment import knn_indices, overlap_from_knn, prepare_features
from helpers.metrics.knn_inference import Overlaps, covariance, inference, max_mean_null, standard_error


def _dense_variance(pairs: np.ndarray, slots: np.ndarray, k: int) -> float:
    """Σ over every two of the score's pairs (i, j), (l, m) sharing an item of ê_ij ê_lm, / (n k)², from
    n × n matrices: ``slots`` marks the pairs the score is made of (j among i's encoder neighbours)."""
    n = pairs.shape[0]
    e = np.where(slots, pairs - pairs[slots].mean(), 0.0)
    total = 0.0
    for i in range(n):  # pairs touching item i, as row or column, each pair of them once per shared item
        touching = np.concatenate([e[i, :], e[:, i]])
        total += touching.sum() ** 2
    # a pair with itself and with its mirror share two items: counted twice above, once in the variance
    total -= (e**2).sum() + (e * e.T).sum()
    return total / (n * k) ** 2


def _graphs(n=80, k=6, seed=0):
    e, (x, y) = World("gaussian", seed=seed).sample(n, np.random.default_rng(seed))
    return [knn_indices(prepare_features(z), k) for z in (e, x, y)]


def test_variance_equals_the_sum_over_pairs_sharing_an_item():
    ke, kx, ky = _graphs()
    n, k = ke.shape
    member = lambda g: (g[:, :, None] == np.arange(n)[None, None, :]).any(axis=1)  # noqa: E731 [n, n]
    me, mx, my = member(ke), member(kx), member(ky)
    ox, oy = Overlaps.from_knn(kx, ke), Overlaps.from_knn(ky, ke)
    for contrast, pairs in ((ox, (mx & me).astype(float)), (ox - oy, (mx & me).astype(float) - (my & me))):
        assert contrast.mean() == pytest.approx(pairs.sum() / (n * k))
        assert covariance([contrast])[0, 0] == pytest.approx(_dense_variance(pairs, me, k), rel=1e-10)
    cov = covariance([ox, oy, ox - oy])
    assert cov[2, 2] == pytest.approx(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])  # bilinear, as a covariance must be


def test_hits_are_the_per_item_overlap():
    ke, kx, _ = _graphs()
    ov = Overlaps.from_knn(kx, ke)
    np.testing.assert_allclose(ov.per_item, overlap_from_knn(kx, ke))


def test_identical_spaces_and_identical_conditions():
    ke, kx, _ = _graphs()
    same = Overlaps.from_knn(ke, ke)
    r = inference(same - same)
    assert r["diff"] == 0 and r["se"] == 0 and r["p_value"] == 1 and r["ci_low"] == r["ci_high"] == 0
    assert inference(same)["diff"] == 1.0 and inference(same)["se"] == 0


def test_a_dependent_pair_structure_widens_the_error():
    """Two items that are each other's only neighbour: one unit of evidence, counted on two rows. The
    per-item standard error treats the rows as independent; the dyadic one sees they are one pair."""
    n = 40
    graph = np.array([[i ^ 1] for i in range(n)])  # 0↔1, 2↔3, …: mirror pairs
    rng = np.random.default_rng(0)
    pair_hit = rng.integers(0, 2, n // 2).astype(float)
    hits = np.repeat(pair_hit, 2)[:, None]  # both rows of a pair agree
    ov = Overlaps(hits, graph)
    naive = hits[:, 0].std(ddof=1) / np.sqrt(n)
    # the mean of n/2 independent pair values, each seen twice
    expected = pair_hit.std(ddof=0) / np.sqrt(n / 2)
    assert np.sqrt(covariance([ov])[0, 0]) == pytest.approx(expected, rel=1e-12)
    assert standard_error(ov) > 1.3 * naive  # with the small-sample factor of the t reference


def test_the_selection_test_accounts_for_correlated_candidates():
    ke, kx, ky = _graphs(n=120, k=8)
    ox, oy = Overlaps.from_knn(kx, ke), Overlaps.from_knn(ky, ke)
    one, _, p_one = max_mean_null([ox - oy], n_draws=4000, seed=1)
    assert one == pytest.approx((ox - oy).mean())
    r = inference(ox - oy)
    # one candidate: the one-sided normal p, half the two-sided t p (up to the Monte-Carlo error and t vs normal)
    assert p_one == pytest.approx(r["p_value"] / 2 if r["diff"] > 0 else 1 - r["p_value"] / 2, abs=0.03)
    # the same candidate three times is still one candidate: no extra correction
    _, _, p_three = max_mean_null([ox - oy] * 3, n_draws=4000, seed=1)
    assert p_three == pytest.approx(p_one, abs=0.02)


def test_inputs_are_checked():
    with pytest.raises(ValueError, match=r"\[n, k\]"):
        Overlaps(np.zeros((3, 2)), np.zeros((3, 1), dtype=int))
    with pytest.raises(ValueError, match="level"):
        inference(Overlaps(np.zeros((4, 1)), np.array([[1], [0], [3], [2]])), level=1.5)
