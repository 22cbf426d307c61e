"""helpers.analyses.cue_search: the held-out split, the selection-corrected test and the computed conclusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analyses import cue_search as C
from helpers.metrics.alignment import knn_indices, prepare_features
from helpers.metrics.knn_inference import Overlaps
from helpers.metrics.stats import paired_difference

IDS = [f"item-{j:03d}" for j in range(400)]


def test_the_split_is_a_stable_function_of_each_id():
    search, held = C.split(IDS)
    assert set(search) | set(held) == set(IDS) and not set(search) & set(held)
    assert 160 < len(held) < 240  # about half
    s2, h2 = C.split(list(reversed(IDS[:150])))  # another order, other items: each id lands where it did
    assert set(h2) == set(held) & set(IDS[:150]) and set(s2) == set(search) & set(IDS[:150])
    _, h30 = C.split(IDS, held_out_share=0.3)
    assert set(h30) < set(held) and 80 < len(h30) < 160  # a smaller share holds out a subset
    with pytest.raises(ValueError):
        C.split(IDS, held_out_share=1.0)


def _candidates(n=200, planted=None, seed=0):
    """NONE and 11 candidates of its law against one encoder; ``planted``: that candidate leans more on the encoder's factor."""
    from helpers.analyses.calibration import World

    e, conds = World("gaussian", effect=0.9 if planted is not None else 0.0, seed=seed).sample(
        n, np.random.default_rng(seed), conditions=13
    )
    cands = conds[2:]
    if planted is not None:
        cands[planted] = conds[0]
    ke = knn_indices(prepare_features(e), 10)
    ov = {"NONE": Overlaps.from_knn(knn_indices(prepare_features(conds[1]), 10), ke)}
    ov.update({f"C{j}": Overlaps.from_knn(knn_indices(prepare_features(x), 10), ke) for j, x in enumerate(cands)})
    return ov


def test_picking_the_best_of_many_candidates_is_corrected_for_the_choice():
    ov = _candidates()
    diffs = {c: (o - ov["NONE"]).mean() for c, o in ov.items() if c != "NONE"}
    best = max(diffs, key=diffs.get)
    naive = paired_difference(ov[best], ov["NONE"])["p_value"] / 2  # one-sided, as if it had not been chosen
    observed, null, p = C.selection_test(ov, n_draws=4000, seed=1)
    assert observed == pytest.approx(diffs[best])
    assert p > 3 * naive and p > 0.1  # the correction removes the winner's curse
    assert null.shape == (4000,)


def test_a_real_improvement_survives_the_correction():
    ov = _candidates(planted=3)
    observed, null, p = C.selection_test(ov, n_draws=4000, seed=1)
    assert observed == pytest.approx((ov["C3"] - ov["NONE"]).mean())
    assert p < 0.01 and observed > np.quantile(null, 0.99)


def test_search_table_ranks_by_score_and_measures_against_none():
    graph = np.array([[1], [2], [0]])
    ov = {
        "NONE": Overlaps(np.array([[0.0], [1.0], [0.0]]), graph),
        "SEE": Overlaps(np.array([[1.0], [1.0], [0.0]]), graph),
        "PICTURE": Overlaps(np.array([[0.0], [0.0], [0.0]]), graph),
    }
    t = C.search_table(ov, {"NONE": "n {caption}", "SEE": "s {caption}", "PICTURE": "p {caption}"})
    assert list(t["cue"]) == ["SEE", "NONE", "PICTURE"] and list(t["rank"]) == [1, 2, 3]
    assert t.set_index("cue")["vs_none"].round(6).to_dict() == pytest.approx(
        {"SEE": 1 / 3, "NONE": 0.0, "PICTURE": -1 / 3}
    )
    assert (t["ci_low"] <= t["score"]).all() and (t["score"] <= t["ci_high"]).all()


def _held(diff_none: float, lo: float, hi: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "condition": "PICTURE",
                "baseline": "NONE",
                "encoder": "img",
                "n_items": 150,
                "diff": diff_none,
                "ci_low": lo,
                "ci_high": hi,
                "p_holm": 0.01 if lo > 0 else 0.5,
            }
        ]
    )


def test_the_conclusion_says_whether_the_winner_holds_up():
    search = pd.DataFrame(
        [
            {
                "cue": "PICTURE",
                "template": "Picture {caption}.",
                "n_items": 150,
                "score": 0.2,
                "ci_low": 0.18,
                "ci_high": 0.22,
                "vs_none": 0.03,
                "rank": 1,
            },
            {
                "cue": "NONE",
                "template": "Imagine: {caption}.",
                "n_items": 150,
                "score": 0.17,
                "ci_low": 0.15,
                "ci_high": 0.19,
                "vs_none": 0.0,
                "rank": 2,
            },
        ]
    )
    good = C.conclusion(search, 0.01, _held(0.02, 0.005, 0.035), "img", 1000)
    assert "beats NONE on items it was not chosen on" in good and "(it was +0.030 on the search half)" in good
    bad = C.conclusion(search, 0.3, _held(0.004, -0.01, 0.02), "img", 1000)
    assert "does not hold up" in bad
    lucky = C.conclusion(search, 0.3, _held(0.02, 0.005, 0.035), "img", 1000)  # held out ok, but selection p not
    assert "Not shown" in lucky and "by chance" in lucky and "beats NONE" not in lucky
    selected_only = C.conclusion(search, 0.01, _held(0.004, -0.01, 0.02), "img", 1000)  # the default run's case
    assert "Not shown to generalise" in selected_only and "by chance" not in selected_only
    none_wins = C.conclusion(search.iloc[::-1].reset_index(drop=True), 0.9, _held(0, -1, 1), "img", 1000)
    assert "NONE itself scores best" in none_wins


def test_covered_names_the_fix_for_an_encoder_the_run_lacks():
    feats = {"img": ("vision", ["a", "b"], np.zeros((2, 3)))}
    manifest = pd.DataFrame({"id": ["a", "b", "c"]})
    assert C.covered(manifest, feats, "img") == ["a", "b"]
    with pytest.raises(KeyError, match="search_encoder 'dinov2-base' has no features"):
        C.covered(manifest, feats, "dinov2-base")


def test_halves_refuse_a_run_too_small_to_split():
    feats = {"clips": ("audio", [f"clip-{j:02d}" for j in range(7)], np.zeros((7, 3)))}
    manifest = pd.DataFrame({"id": [f"clip-{j:02d}" for j in range(7)]})  # split 3 search, 4 held out
    with pytest.raises(ValueError, match=r"more than k=3 items in each half: clips covers \d search and \d held-out"):
        C.halves(manifest, feats, "clips", 0.5, k=3)
    search, held = C.halves(manifest, feats, "clips", 0.5, k=1)
    assert sorted(search + held) == sorted(manifest["id"])
