"""helpers.cue_search: the held-out split, the selection-corrected test and the computed conclusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import cue_search as C
from helpers.stats import paired_difference

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


def test_picking_the_best_of_many_noisy_candidates_is_not_significant():
    rng = np.random.default_rng(0)
    diffs = rng.normal(0, 0.1, size=(150, 12))  # 12 candidates, none better than the baseline
    best = int(diffs.mean(0).argmax())
    naive = paired_difference(diffs[:, best], np.zeros(150), n_boot=200, seed=0)["p_value"]
    observed, null, p = C.max_flip_null(diffs, n_perm=4000, seed=1)
    assert observed == pytest.approx(diffs[:, best].mean())
    assert p > 3 * naive and p > 0.1  # the correction removes the winner's curse
    assert null.shape == (4000,)


def test_a_real_improvement_survives_the_correction():
    rng = np.random.default_rng(0)
    diffs = rng.normal(0, 0.1, size=(150, 12))
    diffs[:, 3] += 0.06
    observed, null, p = C.max_flip_null(diffs, n_perm=4000, seed=1)
    assert p < 0.01 and observed > np.quantile(null, 0.99)


def test_search_table_ranks_by_score_and_measures_against_none():
    ov = pd.DataFrame({"NONE": [0.1, 0.2, 0.3], "SEE": [0.3, 0.3, 0.3], "PICTURE": [0.0, 0.1, 0.2]})
    t = C.search_table(ov, {"NONE": "n {caption}", "SEE": "s {caption}", "PICTURE": "p {caption}"}, n_boot=50)
    assert list(t["cue"]) == ["SEE", "NONE", "PICTURE"] and list(t["rank"]) == [1, 2, 3]
    assert t.set_index("cue")["vs_none"].round(6).to_dict() == {"SEE": 0.1, "NONE": 0.0, "PICTURE": -0.1}


def _held(diff_none: float, lo: float, hi: float) -> pd.DataFrame:
    return pd.DataFrame([{"condition": "PICTURE", "baseline": "NONE", "encoder": "img", "n_items": 150, "diff": diff_none,
                          "ci_low": lo, "ci_high": hi, "p_holm": 0.01 if lo > 0 else 0.5}])


def test_the_conclusion_says_whether_the_winner_holds_up():
    search = pd.DataFrame([{"cue": "PICTURE", "template": "Picture {caption}.", "n_items": 150, "score": 0.2,
                            "ci_low": 0.18, "ci_high": 0.22, "vs_none": 0.03, "rank": 1},
                           {"cue": "NONE", "template": "Imagine: {caption}.", "n_items": 150, "score": 0.17,
                            "ci_low": 0.15, "ci_high": 0.19, "vs_none": 0.0, "rank": 2}])
    good = C.conclusion(search, 0.01, _held(0.02, 0.005, 0.035), "img", 1000)
    assert "beats NONE on items it was not chosen on" in good and "(it was +0.030 on the search half)" in good
    bad = C.conclusion(search, 0.3, _held(0.004, -0.01, 0.02), "img", 1000)
    assert "does not hold up" in bad
    lucky = C.conclusion(search, 0.3, _held(0.02, 0.005, 0.035), "img", 1000)  # held out ok, but selection p not
    assert "does not hold up" in lucky
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
