"""The package's tests on simulated worlds where the answer is known (helpers.analyses.calibration).

Null worlds: two conditions with exactly the same alignment law against one encoder, rows not
interchangeable between them (five kinds: Gaussian, heavy-tailed, anisotropic, early-stop, non-linear
encoder). The paired test must reject at most 7 % of the time at α = 0.05 and its 95 % interval cover the
truth at least 93 % of the time, pooled over the five worlds, at n = 60 (k = 5), 240 (k = 10) and 1,000
(k = 20); the per-item test it replaces must fail the same bound. Monte-Carlo standard errors: ≈ 0.7
points on a pooled 5 % rate from 1,000 item sets (n = 60), ≈ 1.0 from 500 (n = 240), ≈ 2.4 from 80
(n = 1,000, two worlds); each bound sits about two of them from 5 % and 95 %.
"""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.analyses.calibration import (
    WORLDS,
    World,
    calibrate,
    chance_null_error,
    max_test_error,
    monte_carlo_error,
    rephrasing_error,
    score_coverage,
)

pytestmark = pytest.mark.slow

NULL = (0.0, float("nan"))  # the truth of a null world is 0 by construction; no oracle needed for the bounds


def _nulls(n: int, k: int, reps: int, worlds=WORLDS, methods=("dyadic", "per_item")) -> pd.DataFrame:
    table = pd.concat(
        [calibrate(World(kind), n, k, methods=methods, reps=reps, seed=7, truth=NULL) for kind in worlds],
        ignore_index=True,
    )
    print(table[["world", "n", "k", "method", "reject", "coverage"]].to_string(index=False))
    return table


@pytest.fixture(scope="module")
def small():
    return _nulls(60, 5, 200)


@pytest.fixture(scope="module")
def medium():
    return _nulls(240, 10, 100)


def _pooled(table: pd.DataFrame) -> pd.DataFrame:
    return table.groupby("method")[["reject", "coverage"]].mean()


@pytest.mark.parametrize("which", ["small", "medium"])
def test_the_paired_test_holds_its_level_and_its_interval_covers(which, request):
    table = request.getfixturevalue(which)
    pooled = _pooled(table)
    assert pooled.loc["dyadic", "reject"] <= 0.07 and pooled.loc["dyadic", "coverage"] >= 0.93, pooled
    dyadic = table[table["method"] == "dyadic"]
    assert (dyadic["reject"] <= 0.10).all() and (dyadic["coverage"] >= 0.90).all(), dyadic  # no world far off
    # what makes this a test of the calibration: the per-item test fails the same bound in the same worlds
    assert pooled.loc["per_item", "reject"] > 0.08 and pooled.loc["per_item", "coverage"] < 0.91, pooled


def test_the_paired_test_holds_its_level_on_a_thousand_items():
    table = _nulls(1000, 20, 40, worlds=("gaussian", "early-stop"), methods=("dyadic",))
    pooled = _pooled(table)
    assert pooled.loc["dyadic", "reject"] <= 0.07 and pooled.loc["dyadic", "coverage"] >= 0.93, pooled
    assert monte_carlo_error(0.05, 80) < 0.025


def test_power_against_a_planted_effect_is_near_the_oracle():
    row = calibrate(World("gaussian", effect=0.5), 240, 10, methods=("dyadic",), reps=100, seed=3).iloc[0]
    print(row.to_dict())
    assert row["truth"] > 0 and 0.8 <= row["se_ratio"] <= 1.25
    assert row["reject"] >= 0.75 * row["oracle_power"] and row["coverage"] >= 0.9


def test_one_scores_interval_covers_its_truth():
    out = score_coverage(World("early-stop"), 100, 10, reps=150)
    print(out)
    assert out["dyadic"] >= 0.93 and out["per_item_bootstrap"] < 0.90


def test_picking_the_best_of_eleven_candidates_keeps_the_family_wise_error():
    out = max_test_error(World("gaussian"), 150, 10, candidates=11, reps=300, seed=5, n_draws=2000)
    print(out)  # 300 worlds: Monte-Carlo standard error ≈ 1.3 points at 5 %
    assert out["dyadic"] <= 0.08 and out["per_item_sign_flip"] > out["dyadic"]


def test_the_chance_null_is_exact():
    rate = chance_null_error(World("gaussian"), 120, 10, reps=400, seed=3)
    assert rate <= 0.07


def test_the_rephrasings_random_factor_tests_hold_their_level():
    out = rephrasing_error(World("gaussian"), 150, 10, reps=200)
    print(out)  # 200 worlds: Monte-Carlo standard error ≈ 1.5 points at 5 %
    assert out["mean_effect"] <= 0.07 and out["interaction"] <= 0.08
