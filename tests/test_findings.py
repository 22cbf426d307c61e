"""helpers.analyses.findings on constructed runs whose answer is known: an effect planted in the paper's
direction, the opposite one, and none; the cautions; 08's Holm family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analyses import ablations, findings, sensory_ablations as sa, tables
from helpers.core.settings import AlignmentSettings

N, L, H = 150, 2, 24
IDS = [f"i{i:03d}" for i in range(N)]
SETTINGS = AlignmentSettings(k=10, n_perm=2000, seed=0)


def _run(see_noise: float, none_noise: float, hear_noise: float = 3.0, seed: int = 0, n: int = N):
    """Vision features and LLM representations = those features + noise of the given size per cue.

    Less noise means more neighbours shared with the encoder, so ``see_noise < none_noise`` plants
    SEE − NONE > 0 against vision (the paper's direction) and the reverse plants the opposite.
    """
    rng = np.random.default_rng(seed)
    ids = IDS[:n]
    vision = rng.normal(size=(n, H))
    reps = {}
    for cue, noise in (("SEE", see_noise), ("HEAR", hear_noise), ("NONE", none_noise)):
        x = vision + noise * rng.normal(size=(n, H))
        reps[f"{cue}/gen_mean"] = np.repeat(x[:, None, :], L, axis=1)
    return ids, reps, {"vis": ("vision", ids, vision)}


def _findings(see_noise: float, none_noise: float, **kw) -> pd.DataFrame:
    ids, reps, feats = _run(see_noise, none_noise, **kw)
    return findings.cue_effects(tables.paired_cue_comparisons(ids, reps, feats, settings=SETTINGS), "07")


def _see_none(f: pd.DataFrame) -> pd.Series:
    return f[f["test"].str.startswith("SEE − NONE")].iloc[0]


def test_an_effect_planted_in_the_papers_direction_is_reported_as_reproduced():
    f = _findings(see_noise=0.8, none_noise=2.5)
    row = _see_none(f)
    assert row["effect"] > 0.05 and row["ci_low"] > 0
    assert row["verdict"] == "supports" and row["paper_sign"] and row["ci_excludes_0"]
    assert "**SEE raises alignment with the vision encoder** *(confirmatory)* — reproduced" in findings.report(f)


def test_the_opposite_effect_is_called_a_contradiction_in_plain_words():
    ids, reps, feats = _run(see_noise=2.5, none_noise=0.8)
    f = findings.cue_effects(tables.paired_cue_comparisons(ids, reps, feats, settings=SETTINGS), "07")
    see = f[f["test"].str.startswith("SEE − NONE")].iloc[0]
    assert see["effect"] < 0 and see["ci_high"] < 0
    assert see["verdict"] == "contradicts" and not see["paper_sign"]
    text = findings.report(f)
    assert "**contradicted**" in text
    assert "**Against the paper:** SEE − NONE" in text


def test_no_effect_is_neither_reproduced_nor_contradicted():
    ids, reps, feats = _run(see_noise=1.5, none_noise=1.5, seed=3)  # same noise level, independent draws
    f = findings.cue_effects(tables.paired_cue_comparisons(ids, reps, feats, settings=SETTINGS), "07")
    see = f[f["test"].str.startswith("SEE − NONE")].iloc[0]
    assert see["ci_low"] <= 0 <= see["ci_high"]
    assert see["verdict"] in {"direction", "opposite"}
    assert findings.claim_outcome(f[f["test"].str.startswith("SEE − NONE")]) in {"inconclusive", "not_shown"}


def test_identical_representations_are_no_difference_at_all():
    ids, reps, feats = _run(see_noise=1.0, none_noise=1.0)
    reps["NONE/gen_mean"] = reps["SEE/gen_mean"].copy()
    f = findings.cue_effects(tables.paired_cue_comparisons(ids, reps, feats, settings=SETTINGS), "07")
    assert f[f["test"].str.startswith("SEE − NONE")]["verdict"].item() == "zero"


def test_only_the_claims_the_paper_makes_are_tested():
    ids, reps, feats = _run(see_noise=0.8, none_noise=2.5)
    feats["aud"] = ("audio", ids, np.random.default_rng(9).normal(size=(N, H)))
    f = findings.cue_effects(tables.paired_cue_comparisons(ids, reps, feats, settings=SETTINGS), "07")
    # vision: SEE-NONE (+), SEE-HEAR (+); audio: HEAR-NONE (+), SEE-HEAR (-); HEAR-NONE x vision and SEE-NONE x audio are no claim
    assert sorted(zip(f["test"].str.split(" · ").str[:2].str.join(" · "), f["expected"])) == [
        ("HEAR − NONE · aud (audio)", 1),
        ("SEE − HEAR · aud (audio)", -1),
        ("SEE − HEAR · vis (vision)", 1),
        ("SEE − NONE · vis (vision)", 1),
    ]


def test_small_n_and_holm_cautions():
    ids, reps, feats = _run(see_noise=0.8, none_noise=2.5, n=40)
    f = findings.cue_effects(tables.paired_cue_comparisons(ids, reps, feats, settings=SETTINGS), "07")
    assert all("small_n" in c for c in f["cautions"])
    assert "only 40 items" in findings.report(f)
    rows = [findings.finding("07", "c", "t", 0.02, expected=1, ci=(0.001, 0.04), p=0.01, n=300, family="confirmatory")]
    row = findings.table(rows, confirmatory=9).iloc[0]  # Bonferroni over a family of 9: 0.09
    assert row["p_adj"] == pytest.approx(0.09) and row["verdict"] == "weak" and row["cautions"] == "holm_lost"
    assert "p = 0.01 before, 0.09 after the family's correction" in findings.caution_text(row)


def test_a_sign_that_flips_across_k_and_an_effect_below_its_spread_are_named():
    paired = pd.DataFrame(
        [
            {
                "encoder": "vis",
                "modality": "vision",
                "n_items": 300,
                "comparison": "SEE-NONE",
                "cue_1": "SEE",
                "cue_2": "NONE",
                "kind": "gen_mean",
                "diff": 0.01,
                "ci_low": 0.002,
                "ci_high": 0.02,
                "p_value": 0.001,
                "p_holm": 0.004,
            }
        ]
    )
    robust = pd.DataFrame(
        {
            "encoder": "vis",
            "metric": ["mutual_knn"] * 3 + ["cknna"],
            "k": [5, 10, 20, 10],
            "SEE-NONE": [-0.02, 0.01, 0.03, 0.05],
        }
    )
    f = findings.cue_effects(paired, "07", robust)
    assert f["verdict"].item() == "supports"
    assert f["cautions"].item() == "below_spread;flips"
    text = findings.caution_text(f.iloc[0])
    assert "smaller than its spread across k (0.050)" in text
    assert f.iloc[0]["agree"] == 3 and f.iloc[0]["settings"] == 4
    assert "the paper's sign in 3 of 4 settings" in text


def test_05_single_pass_kinds_expect_no_effect():
    rng = np.random.default_rng(0)
    ids, reps, feats = _run(see_noise=0.8, none_noise=2.5)
    vectors = tables.kind_vectors(ids, reps)
    base = rng.normal(size=(N, H))
    vectors["SEE/prompt_last"] = (ids, base + 0.01 * rng.normal(size=(N, H)))
    vectors["NONE/prompt_last"] = (ids, base + 0.01 * rng.normal(size=(N, H)))
    pairs = findings.cue_pairs(list(vectors))
    assert pairs == {
        "SEE/gen_mean": "NONE/gen_mean",
        "HEAR/gen_mean": "NONE/gen_mean",
        "SEE/prompt_last": "NONE/prompt_last",
    }
    paired = ablations.paired_alignment(vectors, pairs, feats, settings=SETTINGS)
    f = findings.cue_effects(paired, "05").set_index("test")
    single = f.loc["SEE − NONE · vis (vision) · single pass, last prompt token"]
    assert single["expected"] == 0 and single["verdict"] == "equivalent" and single["p_equiv_adj"] < 0.05
    assert f.loc["SEE − NONE · vis (vision) · generative", "verdict"] == "supports"
    # HEAR - NONE against vision makes no claim: left out
    assert not any(t.startswith("HEAR − NONE") for t in f.index)


def test_06_names_the_eos_confound_on_the_cue_that_stops_early():
    curve = pd.DataFrame(
        [
            {
                "cue": c,
                "encoder": "vis",
                "modality": "vision",
                "n_items": 200,
                "T": t,
                "representation": rep,
                "score": s,
                "frac_shorter": fs,
            }
            for c, fs_full in (("SEE", 0.05), ("NONE", 0.43))
            for t, rep, s, fs in (
                (8, "prefix", 0.10, 0.0),
                (32, "prefix", 0.11, 0.01),
                (128, "gen_mean", 0.12, fs_full),
            )
        ]
    )
    svg = pd.DataFrame(
        [
            {
                "cue": "SEE",
                "encoder": "vis",
                "modality": "vision",
                "n_items": 200,
                "baseline": "prompt_last",
                "diff": -0.03,
                "ci_low": -0.05,
                "ci_high": -0.01,
                "p_value": 0.001,
                "p_holm": 0.003,
            }
        ]
    )
    f = findings.generation_effects(svg, curve)
    gen = f[f["claim"] == "generating raises alignment above a single pass"].iloc[0]
    assert gen["verdict"] == "contradicts"
    trend = f[f["claim"] == "alignment grows with generation length T"]
    assert trend["effect"].item() == pytest.approx(1.0) and trend["verdict"].item() == "no_ci"
    assert findings.claim_outcome(trend) == "sign_only"
    notes = findings._eos_notes(curve)
    assert list(notes) == ["NONE"] and "43%" in notes["NONE"] and "5% for SEE" in notes["NONE"]


def test_08_p_values_are_holm_corrected_over_the_whole_table():
    paired = pd.DataFrame(
        {
            "condition": ["SEE/random_append", "SEE/random_replace", "HEAR/remove_sensory"],
            "p_value": [0.01, 0.04, 0.03],
            "diff": [-0.05, -0.02, 0.0],
        }
    )
    out = sa.label_ablations(paired, run_name="r", append_k=5, replace_n=5, random_T=64, full_T=128)
    # by hand: sorted 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.03, 0.06, 0.06
    assert out["p_holm"].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert out["stars"].tolist() == ["*", "n.s.", "n.s."]


def test_08_findings_expect_lower_alignment_and_a_null_control():
    rows = [
        {
            "cue": "SEE",
            "ablation": a,
            "encoder": "vis",
            "modality": "vision",
            "n_items": 300,
            "diff": d,
            "ci_low": lo,
            "ci_high": hi,
            "p_value": p,
            "p_holm": ph,
        }
        for a, d, lo, hi, p, ph in (
            ("+5 random words", -0.047, -0.06, -0.03, 1e-4, 1e-3),
            ("sensory words removed", -0.001, -0.005, 0.004, 0.88, 1.0),
            ("random words removed (control)", 0.016, 0.004, 0.029, 0.03, 0.3),
        )
    ]
    rows.append({**rows[0], "cue": "HEAR"})  # HEAR x vision: not a matched row, no claim
    rows.append(
        {
            **rows[1],
            "ablation": "sensory − random words removed",
            "diff": -0.02,
            "ci_low": -0.035,
            "ci_high": -0.005,
            "p_value": 0.004,
        }
    )
    f = findings.ablation_effects(pd.DataFrame(rows), confirmatory=3).set_index("test")
    # exploratory, Holm over three: 3e-4, 0.88, 0.06; the control's "nothing" has no equivalence test without an se
    assert f["verdict"].tolist() == ["supports", "direction", "undetermined", "supports"]
    assert f["expected"].tolist() == [-1, -1, 0, -1]
    assert f["family"].tolist() == ["exploratory"] * 3 + ["confirmatory"]
    assert f["p_adj"].tolist() == pytest.approx([3e-4, 0.88, 0.06, 0.012])


def test_09_effects_per_llm_and_the_size_direction():
    paired = pd.DataFrame(
        [
            {
                "condition": f"{llm}|SEE",
                "baseline": f"{llm}|NONE",
                "encoder": "vis",
                "modality": "vision",
                "n_items": 300,
                "diff": d,
                "ci_low": d - 0.01,
                "ci_high": d + 0.01,
                "p_value": 0.01,
            }
            for llm, d in (("big", 0.05), ("small", 0.02))
        ]
    )
    models = pd.DataFrame({"llm": ["small", "big"], "n_params": [1e8, 1e9]})
    f = findings.model_size_effects(paired, models)
    trend = f[f["claim"] == "the cue effect grows with model size"].iloc[0]
    assert trend["effect"] == pytest.approx(0.03) and trend["paper_sign"]
    assert "big minus small" in trend["test"] and trend["cautions"] == "few_models"
    per_llm = f[f["claim"] != "the cue effect grows with model size"]
    assert per_llm["p_adj"].tolist() == pytest.approx([0.02, 0.02])


def test_llm_cue_pairs():
    names = ["a|SEE", "a|HEAR", "a|NONE", "b|SEE", "b|NONE"]
    assert findings.llm_cue_pairs(names) == {"a|SEE": "a|NONE", "a|HEAR": "a|NONE", "b|SEE": "b|NONE"}


def test_an_empty_findings_table_says_why():
    assert "No paper claim can be tested" in findings.report(findings.table([]))


def test_the_permutation_sentence_tells_too_few_permutations_from_chance():
    def null(p):
        return pd.DataFrame(
            {
                "cue": "SEE",
                "encoder": "vis",
                "kind": ["gen_mean", "prompt_last"] * 5,
                "p_value": p,
                "p_holm": np.minimum(1, np.asarray(p) * 10),
            }
        )

    assert "Too few permutations" in findings.null_line(null([1 / 101] * 10), n_perm=100)  # 10 x 0.0099 > 0.05
    line = findings.null_line(null([0.2] * 10), n_perm=10000)  # enough permutations, truly at chance
    assert (
        "not above chance: SEE generative × vis, SEE single pass, last prompt token × vis" in line and "6 more" in line
    )
    assert "every kernel carries signal" in findings.null_line(null([1e-4] * 10), n_perm=10000)


def test_point_estimates_of_both_signs_are_called_mixed_and_cautions_name_whole_claims():
    rows = [
        findings.finding("09", "grows", f"t{i}", e, expected=1, cautions=["few_models"], note="two LLMs")
        for i, e in enumerate((0.03, -0.01, 0.02))
    ]
    rows += [findings.finding("09", "raises", f"u{i}", 0.01, expected=1, ci=(-0.01, 0.03), n=40) for i in range(3)]
    f = findings.table(rows)
    assert findings.claim_outcome(f[f["claim"] == "grows"]) == "sign_mixed"
    text = findings.report(f)
    assert (
        "*Caution* (every test of “raises”): only 40 items (the tests are calibrated from about 100 items on)." in text
    )
    assert "*Caution* (every test of “grows”): two LLMs." in text


def test_a_cue_that_stops_early_is_named_on_its_comparisons():
    paired = pd.DataFrame(
        [
            {
                "encoder": "vis",
                "modality": "vision",
                "n_items": 300,
                "comparison": f"SEE-{c2}",
                "cue_1": "SEE",
                "cue_2": c2,
                "kind": "gen_mean",
                "diff": 0.01,
                "ci_low": -0.01,
                "ci_high": 0.03,
                "p_value": 0.2,
                "p_holm": 0.5,
            }
            for c2 in ("NONE", "HEAR")
        ]
    )
    lengths = pd.DataFrame(
        {"cue": ["SEE", "HEAR", "NONE"], "eos_rate": [0.02, 0.07, 0.29], "mean_tokens": [127.0, 122.6, 105.4]}
    )
    f = findings.cue_effects(paired, "07", lengths=lengths).set_index("test")
    none = f.loc["SEE − NONE · vis (vision) · generative"]
    assert none["cautions"] == "eos"
    assert (
        "NONE's generations stopped at EOS 29% of the time against 2% for SEE (mean 105 vs 127 tokens)" in none["note"]
    )
    assert f.loc["SEE − HEAR · vis (vision) · generative", "cautions"] == ""  # 2% vs 7%: no confound


def test_a_run_reads_the_tables_its_earlier_notebooks_saved(tmp_path):
    from helpers.data.artifacts import RunPaths

    run = RunPaths.of("r", tmp_path)
    assert run.read_results("generation_lengths") is None
    run.save_results(pd.DataFrame({"cue": ["SEE"], "eos_rate": [0.1]}), "generation_lengths")
    assert run.read_results("generation_lengths").to_dict("records") == [{"run": "r", "cue": "SEE", "eos_rate": 0.1}]


@pytest.mark.parametrize(
    "effect, p, p_adj, expected, p_equiv_adj, verdict",
    [
        (-0.02, 0.001, 0.01, 1, np.nan, "contradicts"),
        (-0.02, 0.001, 0.30, 1, np.nan, "against"),  # p < 0.05, the correction does not: not a contradiction
        (-0.02, 0.001, np.nan, 1, np.nan, "against"),  # a missing corrected p is never significant, either way
        (0.02, 0.001, np.nan, 1, np.nan, "weak"),
        (0.011, 0.049, 1.0, 0, 0.20, "undetermined"),  # the paper expects nothing; neither shown
        (0.001, 0.8, 1.0, 0, 0.01, "equivalent"),  # no effect is concluded from the equivalence test only
        (0.001, 0.8, 1.0, 0, np.nan, "undetermined"),
        (0.05, 1e-4, 0.001, 0, np.nan, "differs"),
        (0.0, 1.0, 1.0, 1, np.nan, "zero"),
        (
            0.011,
            0.05000000001,
            0.2,
            1,
            np.nan,
            "direction",
        ),  # p just above α: the CI bound at 5e-19 is not an exclusion
    ],
)
def test_verdicts_need_the_test_and_the_correction_to_agree(effect, p, p_adj, expected, p_equiv_adj, verdict):
    assert findings.verdict(effect, p, p_adj, expected, p_equiv_adj) == verdict


def test_a_claim_with_support_and_a_contradiction_is_mixed_not_contradicted():
    rows = [
        findings.finding("05", "c", f"t{i}", e, expected=1, ci=(e - 0.01, e + 0.01), p=1e-5, family="confirmatory")
        for i, e in enumerate((0.05, -0.05))
    ]
    f = findings.table(rows, confirmatory=2)
    assert f["verdict"].tolist() == ["supports", "contradicts"] and findings.claim_outcome(f) == "mixed"


def test_the_equivalence_test_has_its_level():
    """Two one-sided tests at the margin: an effect exactly at the margin is equivalent 5 % of the time."""
    rng = np.random.default_rng(0)
    se, n = 0.01, 300
    effects = findings.EQUIVALENCE_MARGIN + se * rng.standard_t(findings.effective_df(n), 20000)
    p = np.array([findings.equivalence_p(e, se, n) for e in effects[:4000]])
    assert np.mean(p < 0.05) == pytest.approx(0.05, abs=0.012)
    assert findings.equivalence_p(0.0, 0.002, 300) < 1e-6 and findings.equivalence_p(0.0, 0.05, 300) > 0.3


def test_a_borderline_control_is_not_reported_against_the_paper():
    row = findings.finding(
        "08",
        "deleting as many random words changes nothing",
        "control",
        0.011,
        expected=0,
        ci=(0.0004, 0.022),
        p=0.088,
        se=0.0055,
        n=101,
    )
    text = findings.report(findings.table([row]))
    assert "Against the paper" not in text and "undetermined" in text


def test_08_random_sensory_words_are_judged_against_random_non_sensory_words():
    rows = [
        {
            "cue": "SEE",
            "ablation": a,
            "encoder": "vis",
            "modality": "vision",
            "n_items": 300,
            "diff": d,
            "ci_low": d - 0.01,
            "ci_high": d + 0.01,
            "p_value": p,
        }
        for a, d, p in (
            ("+5 random non-sensory words (control)", -0.04, 1e-4),
            ("sensory − non-sensory random words appended", -0.005, 0.4),
        )
    ]
    f = findings.ablation_effects(pd.DataFrame(rows))
    # the control alone makes no claim; the direct comparison does, and here random words of any kind lower it alike
    assert f["test"].tolist() == ["SEE · sensory − non-sensory random words appended · vis (vision)"]
    assert f["claim"].item() == "random sensory words lower alignment more than random non-sensory words"
    assert f["verdict"].item() == "direction"


@pytest.mark.parametrize(
    "effects, outcome",
    [
        ((0.01, 0.02, 0.015), "inconclusive"),  # all in the paper's direction, none significant
        ((0.01, -0.02, -0.015), "split"),  # one toward, two away: not "in the paper's direction"
        ((-0.01, -0.02), "not_shown"),
    ],
)
def test_a_claim_is_in_the_papers_direction_only_when_its_tests_are(effects, outcome):
    rows = [
        findings.finding("08", "c", f"t{i}", e, expected=1, ci=(e - 0.05, e + 0.05), p=0.5, family="exploratory")
        for i, e in enumerate(effects)
    ]
    assert findings.claim_outcome(findings.table(rows)) == outcome
