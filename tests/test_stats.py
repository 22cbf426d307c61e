"""The statistics on constructed data whose answer is known: kernel metrics, permutation null, Holm, stars."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.metrics import alignment as A, stats as S


def clusters(n_clusters: int, size: int, dim: int = 64, seed: int = 0, noise: float = 0.01) -> np.ndarray:
    """Well separated clusters of ``size`` items: each item's size−1 nearest neighbours are its cluster-mates."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    return np.repeat(centres, size, axis=0) + noise * rng.normal(size=(n_clusters * size, dim))


def planted(k: int, kept: int, n_clusters: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two spaces of clusters of k+1 items; in ``b`` each cluster keeps ``kept`` items and takes the
    other k+1−kept from the next cluster. Returns a, b and the exact per-item mutual k-NN."""
    size = k + 1
    a = clusters(n_clusters, size, seed=seed)
    labels_b = np.repeat(np.arange(n_clusters), size)
    moved = np.tile(np.arange(size) >= kept, n_clusters)
    labels_b[moved] = (labels_b[moved] - 1) % n_clusters  # the moved part joins the previous cluster
    b = clusters(n_clusters, 1, seed=seed + 1)[labels_b] + 0.01 * np.random.default_rng(seed + 2).normal(size=a.shape)
    expected = np.where(moved, (size - kept - 1) / k, (kept - 1) / k)
    return a, b, expected


def test_planted_overlap_gives_the_planted_fraction_exactly():
    k = 9
    a, b, expected = planted(k, kept=7)
    np.testing.assert_allclose(A.mutual_knn_per_item(a, b, k=k), expected)
    assert A.mutual_knn(a, b, k=k) == pytest.approx((7 * 6 + 3 * 2) / (10 * 9))
    res = S.permutation_null(a, b, k=k, n_perm=500)
    assert res["p_value"] == pytest.approx(1 / 501)
    assert res["null_mean"] == pytest.approx(A.mutual_knn_chance(len(a), k), rel=0.1)
    assert res["calibrated"] == pytest.approx((res["score"] - res["null_mean"]) / (1 - res["null_mean"]))


@pytest.mark.parametrize("metric", ["cknna", "unbiased_cka"])
def test_kernel_metrics_identical_rotated_and_independent(metric):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(150, 32))
    rot, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    assert A.score(metric, a, a, k=10) == pytest.approx(1.0, abs=1e-9)
    assert A.score(metric, a, 3.0 * a @ rot, k=10, q=1.0) == pytest.approx(1.0, abs=1e-9)  # rotation, scale
    indep = [A.score(metric, a, np.random.default_rng(s).normal(size=(150, 32)), k=10) for s in range(1, 9)]
    if metric == "unbiased_cka":
        assert abs(np.mean(indep)) < 0.01  # the unbiased estimator sits at 0 (slightly either side)
    else:
        # CKNNA counts only pairs that are neighbours in both spaces: unrelated kernels still share
        # about k/(n-1) of them, so it sits near (just under) the mutual k-NN chance level, not at 0.
        assert 0 < np.mean(indep) < A.mutual_knn_chance(150, 10)


def test_kernel_metrics_order_related_kernels():
    k = 9
    a, b, _ = planted(k, kept=7)
    _, b_less, _ = planted(k, kept=5)
    for metric in ("mutual_knn", "cknna"):
        assert A.score(metric, a, a, k) > A.score(metric, a, b, k) > A.score(metric, a, b_less, k) > 0.2
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    noisy = [A.unbiased_cka(x, x + s * rng.normal(size=x.shape)) for s in (0.3, 1.0, 3.0)]
    assert 1 > noisy[0] > noisy[1] > noisy[2] > 0


def test_hsic_unbiased_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 3))
    K, L = x @ x.T, (x + y) @ (x + y).T
    m = 12
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(m)
    expected = (
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((m - 1) * (m - 2))
        - 2 / (m - 2) * one @ Kt @ Lt @ one
    ) / (m * (m - 3))
    assert A.hsic_unbiased(K, L) == pytest.approx(expected)
    with pytest.raises(ValueError, match="more than 3"):
        A.hsic_unbiased(K[:3, :3], L[:3, :3])


def test_metric_dispatch_names_the_known_metrics():
    a = np.random.default_rng(0).normal(size=(30, 4))
    assert A.score("mutual_knn", a, a, k=3) == 1.0
    with pytest.raises(ValueError, match="known metrics: mutual_knn, cknna, unbiased_cka"):
        A.score("cka_biased", a, a)
    with pytest.raises(ValueError, match="k >= 2"):
        A.cknna(a, a, k=1)
    assert A.metric_chance("mutual_knn", 31, 3) == pytest.approx(0.1) and A.metric_chance("unbiased_cka", 31, 3) == 0


def test_null_overlaps_equal_scores_of_explicitly_permuted_rows():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    a[:20] = b[:20]  # some real structure so the scores vary
    k = 4
    knn_a = A.knn_indices(A.prepare_features(a), k)
    knn_b = A.knn_indices(A.prepare_features(b), k)
    perms = np.stack([rng.permutation(40) for _ in range(12)] + [np.arange(40)])
    got = S.null_overlaps(knn_a, knn_b, perms=perms, chunk=5)
    expected = [A.mutual_knn(a, b[p], k=k) for p in perms]
    np.testing.assert_allclose(got, expected)
    # under random re-pairing the expected overlap is exactly k / (n - 1)
    assert S.null_overlaps(knn_a, knn_b, n_perm=4000).mean() == pytest.approx(k / 39, rel=0.03)


def test_independent_kernels_give_uniform_p_values():
    rng = np.random.default_rng(0)
    p = [
        S.permutation_null(rng.normal(size=(60, 8)), rng.normal(size=(60, 8)), k=5, n_perm=200, seed=s)["p_value"]
        for s in range(40)
    ]
    assert 0.35 < np.mean(p) < 0.65 and np.mean(np.array(p) < 0.05) < 0.15


def test_holm_on_known_p_values():
    np.testing.assert_allclose(S.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # step-down monotonicity and the cap at 1
    np.testing.assert_allclose(S.holm([0.02, 0.5, 0.6]), [0.06, 1.0, 1.0])
    got = S.holm([0.01, np.nan, 0.02])
    assert np.isnan(got[1]) and got[0] == pytest.approx(0.02) and got[2] == pytest.approx(0.02)
    assert S.holm([]).size == 0
    single = S.holm([0.03])
    assert single[0] == pytest.approx(0.03)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        S.holm([0.5, 1.5])


def test_holm_controls_familywise_error_on_true_nulls():
    rng = np.random.default_rng(0)
    families = rng.uniform(size=(4000, 9))
    any_rejected = (np.apply_along_axis(S.holm, 1, families) < 0.05).any(axis=1).mean()
    raw = (families < 0.05).any(axis=1).mean()
    assert any_rejected < 0.055 < 0.3 < raw


def test_stars():
    assert [S.stars(p) for p in (0.0005, 0.001, 0.009, 0.04, 0.05, 0.5)] == ["***", "**", "**", "*", "n.s.", "n.s."]
    assert S.stars(float("nan")) == ""
