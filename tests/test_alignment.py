"""Mutual k-NN against hand-worked cases, its invariances, chance level and the bootstrap CI."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.analyses.tables import alignment_table
from helpers.core.settings import AlignmentSettings as S
from helpers.metrics.alignment import (
    knn_indices,
    layer_mean,
    match_rows,
    mutual_knn,
    mutual_knn_chance,
    mutual_knn_per_item,
    prepare_features,
)


def on_circle(degrees: list[float]) -> np.ndarray:
    rad = np.deg2rad(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


A = on_circle([0, 10, 90, 100])  # 1-NN: 0<->1, 2<->3


def test_knn_by_hand():
    assert knn_indices(prepare_features(A, q=1.0), 1)[:, 0].tolist() == [1, 0, 3, 2]


@pytest.mark.parametrize(
    "b_degrees, expected",
    [
        ([0, 10, 90, 100], 1.0),  # same neighbourhoods
        ([0, 10, 100, 90], 1.0),  # different geometry, same neighbour structure
        ([0, 90, 10, 100], 0.0),  # every item's neighbour changes
        ([0, 10, 90, 180], 0.75),  # 1-NN in b: [1, 0, 1, 2] vs a: [1, 0, 3, 2]
    ],
)
def test_mutual_knn_hand_worked(b_degrees, expected):
    assert mutual_knn(A, on_circle(b_degrees), k=1, q=1.0) == pytest.approx(expected)


def test_per_item_values_by_hand():
    got = mutual_knn_per_item(A, on_circle([0, 10, 90, 180]), k=1, q=1.0)
    assert got.tolist() == [1.0, 1.0, 0.0, 1.0]


def test_prepare_features_clamps_at_mean_row_quantile_and_normalises():
    x = np.array([[1.0, 2.0, 3.0, 100.0], [1.0, 1.0, 1.0, 1.0]])
    q_val = np.mean([np.quantile(np.abs(r), 0.5) for r in x])  # (2.5 + 1) / 2 = 1.75
    out = prepare_features(x, q=0.5)
    expected = np.clip(x, -q_val, q_val)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0)


def test_clamping_removes_an_outlier_dimension():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(60, 16))
    spiked = base.copy()
    spiked[:, 0] = rng.normal(size=60) * 1000  # one huge, uninformative dimension
    # unclamped, the spike decides every neighbourhood; clamped, it is one dimension among 16
    assert mutual_knn(base, spiked, k=5, q=0.95) > mutual_knn(base, spiked, k=5, q=1.0) + 0.1


def test_invariances():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(80, 12))
    b = a @ rng.normal(size=(12, 20)) + 0.5 * rng.normal(size=(80, 20))
    score = mutual_knn(a, b, k=5)
    perm = rng.permutation(80)
    assert mutual_knn(a[perm], b[perm], k=5) == pytest.approx(score)  # joint item order
    assert mutual_knn(b, a, k=5) == pytest.approx(score)  # symmetric
    assert mutual_knn(3.7 * a, b, k=5) == pytest.approx(score)  # positive scale
    rot, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert mutual_knn(a @ rot, b, k=5, q=1.0) == pytest.approx(mutual_knn(a, b, k=5, q=1.0))  # rotation
    assert mutual_knn(a, a, k=5) == 1.0
    assert 0.2 < score < 1.0  # related but not identical kernels sit in between


def test_independent_kernels_sit_at_chance():
    n, k = 200, 10
    scores = [
        mutual_knn(np.random.default_rng(s).normal(size=(n, 8)), np.random.default_rng(100 + s).normal(size=(n, 8)), k)
        for s in range(10)
    ]
    assert np.mean(scores) == pytest.approx(mutual_knn_chance(n, k), rel=0.15)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="same items"):
        mutual_knn(np.ones((5, 2)), np.ones((6, 2)), k=1)
    with pytest.raises(ValueError, match="k must be"):
        mutual_knn(A, A, k=4)
    with pytest.raises(ValueError, match="NaN"):
        prepare_features(np.array([[1.0, np.nan], [1.0, 2.0]]))


def test_match_rows_and_table():
    ids_a = [f"i{j}" for j in range(30)]
    ids_b = list(reversed(ids_a[5:]))
    ia, ib = match_rows(ids_a, ids_b)
    assert [ids_a[i] for i in ia] == [ids_b[j] for j in ib] == ids_a[5:]
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(30, 6))
    table = alignment_table(
        {"SEE/gen_mean": (ids_a, feats)},
        {"enc": ("vision", ids_b, feats[5:][::-1] * 2.0)},
        settings=S(k=3),
    )
    row = table.iloc[0]
    assert row["n_items"] == 25 and row["score"] == pytest.approx(1.0)
    assert row["chance"] == pytest.approx(3 / 24)
    with pytest.raises(ValueError, match="shared items"):
        alignment_table({"r": (ids_a[:3], feats[:3])}, {"e": ("audio", ids_a[:3], feats[:3])}, settings=S(k=3))


def test_layer_mean():
    x = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    np.testing.assert_allclose(layer_mean(x), x.mean(axis=1))
    np.testing.assert_allclose(layer_mean(x, first_layer=1), x[:, 1:].mean(axis=1))


def test_permutation_null_identical_independent_and_planted():
    from helpers.metrics.stats import permutation_null

    rng = np.random.default_rng(0)
    a = rng.normal(size=(120, 10))
    same = permutation_null(a, a, k=5, n_perm=300)
    assert same["score"] == 1.0 and same["p_value"] == pytest.approx(1 / 301) and same["calibrated"] > 0.95
    assert same["null_mean"] == pytest.approx(mutual_knn_chance(120, 5), rel=0.25)
    indep = [
        permutation_null(a, np.random.default_rng(100 + s).normal(size=(120, 10)), k=5, n_perm=200, seed=s)
        for s in range(8)
    ]
    assert np.mean([r["calibrated"] for r in indep]) == pytest.approx(0.0, abs=0.03)
    assert 0.2 < np.mean([r["p_value"] for r in indep]) < 0.8  # p-values of true nulls spread over (0, 1)
    # planted partial overlap: half the items keep their structure, half are noise
    b = a.copy()
    b[60:] = rng.normal(size=(60, 10))
    planted = permutation_null(a, b, k=5, n_perm=300)
    assert indep[0]["score"] < planted["score"] < same["score"] and planted["p_value"] < 0.01


def test_paired_difference_needs_the_neighbour_graph():
    from helpers.metrics.knn_inference import Overlaps
    from helpers.metrics.stats import paired_difference

    with pytest.raises(TypeError, match="neighbour graph"):
        paired_difference(np.zeros(3), np.zeros(3))
    graph = np.array([[1], [0], [0]])
    with pytest.raises(ValueError, match="same encoder graph"):
        paired_difference(Overlaps(np.ones((3, 1)), graph), Overlaps(np.ones((3, 1)), np.array([[1], [2], [0]])))
