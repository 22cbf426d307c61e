"""The paired cue test on simulated worlds where the answer is known (helpers.calibration).

Null worlds: two conditions with exactly the same alignment law against one encoder, rows not
interchangeable between them. The package's test must reject at most 7 % of the time at α = 0.05 and
its 95 % interval cover the truth at least 93 % of the time, pooled over the five worlds (500 item
sets: Monte-Carlo standard error ≈ 1.0 point on a 5 % rate, ≈ 1.1 on 95 % coverage); the per-item test
it replaces must fail the same bound (what makes this a test of the calibration, not of the code).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.calibration import WORLDS, World, calibrate, max_test_error, monte_carlo_error

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def null_table() -> pd.DataFrame:
    return pd.concat([calibrate(World(kind), 240, 10, methods=("dyadic", "per_item"), reps=100, seed=7,
                                truth=(0.0, float("nan"))) for kind in WORLDS], ignore_index=True)


def test_the_paired_test_holds_its_level_and_its_interval_covers(null_table):
    pooled = null_table.groupby("method")[["reject", "coverage"]].mean()
    print(null_table[["world", "method", "reject", "coverage"]].to_string(index=False))
    assert pooled.loc["dyadic", "reject"] <= 0.07, pooled
    assert pooled.loc["dyadic", "coverage"] >= 0.93, pooled
    assert monte_carlo_error(0.05, 500) < 0.011
    # no single world is far off either
    dyadic = null_table[null_table["method"] == "dyadic"]
    assert (dyadic["reject"] <= 0.10).all() and (dyadic["coverage"] >= 0.90).all(), dyadic


def test_the_per_item_test_fails_the_same_worlds(null_table):
    pooled = null_table.groupby("method")[["reject", "coverage"]].mean()
    assert pooled.loc["per_item", "reject"] > 0.08 and pooled.loc["per_item", "coverage"] < 0.90, pooled


def test_power_against_a_planted_effect_is_near_the_oracle():
    world = World("gaussian", effect=0.5)
    row = calibrate(world, 240, 10, methods=("dyadic",), reps=100, seed=3).iloc[0]
    print(row.to_dict())
    assert row["truth"] > 0 and 0.8 <= row["se_ratio"] <= 1.25
    assert row["reject"] >= 0.75 * row["oracle_power"] and row["coverage"] >= 0.9


def test_picking_the_best_of_eleven_candidates_keeps_the_family_wise_error():
    out = max_test_error(World("gaussian"), 150, 10, candidates=11, reps=100, seed=5, n_draws=2000)
    print(out)
    # 100 worlds: Monte-Carlo standard error ≈ 2.2 points at 5 %
    assert out["dyadic"] <= 0.10 and out["per_item_sign_flip"] > out["dyadic"]
