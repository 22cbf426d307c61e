"""helpers.analyses.tables on a constructed run whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analyses import generation_stats as GL, tables as AN
from helpers.core.settings import AlignmentSettings as S
from helpers.metrics.alignment import mutual_knn, mutual_knn_chance

N, L, H = 60, 4, 16
IDS = [f"item{i:02d}" for i in range(N)]
CUES = ("SEE", "HEAR", "NONE")


def _run(seed: int = 0):
    """SEE's generative representation *is* the vision features, HEAR's the audio features, NONE is noise.

    Every layer of SEE/gen_mean carries the vision features (so every layer and the layer mean align
    perfectly); prefixes move from noise (T=2) to the full representation (T=4 equals gen_mean).
    """
    rng = np.random.default_rng(seed)
    vision = rng.normal(size=(N, H))
    audio = rng.normal(size=(N, H))
    reps = {}
    for cue, base in (("SEE", vision), ("HEAR", audio), ("NONE", rng.normal(size=(N, H)))):
        gen = np.repeat(base[:, None, :], L, axis=1)
        reps[f"{cue}/gen_mean"] = gen
        reps[f"{cue}/prompt_last"] = rng.normal(size=(N, L, H))
        reps[f"{cue}/prompt_mean"] = gen + 0.5 * rng.normal(size=(N, L, H))
        reps[f"{cue}/prefix_T2"] = rng.normal(size=(N, L, H))
        reps[f"{cue}/prefix_T4"] = gen.copy()
        reps[f"{cue}/prefix_T8"] = gen.copy()  # >= the longest generation: left out of the curve
    audio_ids = IDS[::2][::-1]  # half the items have a sound, listed in another order
    rows = [IDS.index(i) for i in audio_ids]
    feats = {"vis": ("vision", IDS, vision), "aud": ("audio", audio_ids, audio[rows])}
    lengths = {cue: np.where(np.arange(N) < 15, 3, 6) for cue in CUES}  # a quarter stop at 3 tokens
    return reps, feats, lengths


def test_inputs_are_read_from_the_keys():
    reps, _, _ = _run()
    assert AN.cues_of(reps) == list(CUES) and AN.prefix_lengths_of(reps) == [2, 4, 8]
    with pytest.raises(ValueError, match="<cue>/<kind>"):
        AN.split_key("gen_mean")
    with pytest.raises(KeyError, match="rerun 03"):
        AN.layerwise(IDS, reps, {"vis": ("vision", IDS, np.ones((N, 2)))}, kind="prefix_T16", settings=S(k=5))


def test_length_curve():
    reps, feats, lengths = _run()
    table = AN.length_curve(IDS, reps, feats, gen_lengths=lengths, settings=S(k=5))
    # per cue x encoder: prompt_last, prompt_mean (T=0), prefixes 2 and 4, gen_mean at T=6
    assert len(table) == 3 * 2 * 5
    see_vis = table[(table.cue == "SEE") & (table.encoder == "vis")].set_index("representation")
    assert see_vis.loc["gen_mean", "T"] == 6 and see_vis.loc["gen_mean", "score"] == pytest.approx(1.0)
    assert list(see_vis["T"]) == [0, 0, 2, 4, 6]
    assert see_vis.loc["prefix", "score"].tolist()[1] == pytest.approx(1.0)  # T=4 is the full representation
    assert see_vis.loc["prefix", "score"].tolist()[0] < 0.4  # T=2 is noise
    assert see_vis.loc["prompt_mean", "score"] > see_vis.loc["prompt_last", "score"]
    aud = table[table.encoder == "aud"]
    assert (aud["n_items"] == N // 2).all() and np.allclose(aud["chance"], mutual_knn_chance(N // 2, 5))
    vis = table[table.encoder == "vis"]
    assert vis.loc[vis["T"] == 4, "frac_shorter"].eq(0.25).all() and vis.loc[vis["T"] == 0, "frac_shorter"].isna().all()
    assert (table["ci_low"] <= table["score"] + 1e-12).all() and (table["score"] <= table["ci_high"] + 1e-12).all()
    with pytest.raises(ValueError, match="full_T"):
        AN.length_curve(IDS, reps, feats)


def test_layerwise():
    reps, feats, _ = _run()
    reps["HEAR/gen_mean"] = reps["HEAR/gen_mean"].copy()
    reps["HEAR/gen_mean"][:, 0] = np.random.default_rng(9).normal(size=(N, H))  # layer 0 carries nothing
    table = AN.layerwise(IDS, reps, feats, settings=S(k=5, first_layer=1))
    assert len(table) == 3 * L * 2 and set(table["layer"]) == set(range(L))
    see = table[(table.cue == "SEE") & (table.encoder == "vis")]
    assert see["score"].eq(1.0).all() and see["layer_mean_score"].eq(1.0).all()
    hear = table[(table.cue == "HEAR") & (table.encoder == "aud")].set_index("layer")
    assert hear.loc[0, "score"] < 0.5 and hear.loc[1:, "score"].eq(1.0).all()
    assert hear["layer_mean_score"].iloc[0] == 1.0  # first_layer=1 leaves layer 0 out of the mean


def test_paired_cue_comparisons():
    reps, feats, _ = _run()
    table = AN.paired_cue_comparisons(IDS, reps, feats, settings=S(k=5, n_perm=10000))
    assert len(table) == 3 * 2 and list(table["comparison"][:3]) == ["SEE-NONE", "HEAR-NONE", "SEE-HEAR"]
    row = table[(table.encoder == "vis") & (table.comparison == "SEE-NONE")].iloc[0]
    assert row["diff"] == pytest.approx(row["score_1"] - row["score_2"]) and row["score_1"] == 1.0
    assert row["ci_low"] > 0 and row["p_value"] < 0.001 and row["stars"] == "***"
    assert row["se"] > 0 and row["ci_low"] == pytest.approx(row["diff"] - (row["diff"] - row["ci_low"]))
    assert (table["p_holm"] >= table["p_value"] - 1e-12).all() and (table["p_holm"] <= 1).all()
    none_vs_hear_on_vision = table[(table.encoder == "vis") & (table.comparison == "HEAR-NONE")].iloc[0]
    assert none_vs_hear_on_vision["ci_low"] < 0 < none_vs_hear_on_vision["ci_high"]  # both are unrelated to vision
    # a run without HEAR keeps only the comparisons it can make
    no_hear = {k: v for k, v in reps.items() if not k.startswith("HEAR/")}
    assert list(AN.paired_cue_comparisons(IDS, no_hear, feats, settings=S(k=5, n_perm=100))["comparison"].unique()) == [
        "SEE-NONE"
    ]


def test_single_vs_generative():
    reps, feats, _ = _run()
    table = AN.single_vs_generative(IDS, reps, feats, settings=S(k=5, n_perm=5000))
    assert len(table) == 3 * 2 * 2 and set(table["baseline"]) == {"prompt_last", "prompt_mean"}
    row = table[(table.cue == "SEE") & (table.encoder == "vis") & (table.baseline == "prompt_last")].iloc[0]
    assert row["score_generative"] == 1.0 and row["diff"] > 0.5 and row["p_holm"] < 0.01


def test_permutation_table():
    reps, feats, _ = _run()
    table = AN.permutation_table(IDS, reps, feats, settings=S(k=5, n_perm=300))
    assert len(table) == 3 * 3 * 2
    hit = table[(table.cue == "SEE") & (table.kind == "gen_mean") & (table.encoder == "vis")].iloc[0]
    assert hit["score"] == 1.0 and hit["p_value"] == pytest.approx(1 / 301) and hit["calibrated"] > 0.95
    miss = table[(table.cue == "NONE") & (table.kind == "gen_mean")]
    assert (miss["p_holm"] > 0.05).all() and (miss["calibrated"].abs() < 0.15).all()
    assert (table["null_mean"] - table["chance"]).abs().max() < 0.03


def test_robustness_table():
    reps, feats, _ = _run()
    with pytest.warns(UserWarning, match="aud shares only 30 items, k=40 left out"):
        table = AN.robustness(IDS, reps, feats, ks=(3, 5, 40), metrics=["cknna", "unbiased_cka"])
    # mutual k-NN and CKNNA at k=3, 5 for both encoders, k=40 only for vision (audio has 30 items); CKA once each
    assert len(table) == 2 * 2 * 2 + 2 + 2
    assert table["k"].dtype == "Int64" and table.loc[table.metric == "unbiased_cka", "k"].isna().all()
    assert table["matches_paper"].all()  # SEE−NONE > 0 on vision, HEAR−NONE > 0 on audio in every row
    vis = table[(table.encoder == "vis") & (table.metric == "mutual_knn") & (table.k == 5)].iloc[0]
    assert vis["SEE"] == 1.0 and vis["SEE-NONE"] == pytest.approx(1.0 - vis["NONE"])
    assert vis["SEE"] == pytest.approx(mutual_knn(reps["SEE/gen_mean"].mean(1), feats["vis"][2], k=5))
    cka = table[(table.metric == "unbiased_cka") & (table.encoder == "aud")].iloc[0]
    assert cka["HEAR"] == pytest.approx(1.0) and abs(cka["NONE"]) < 0.1
    with pytest.raises(ValueError, match="known metrics"):
        AN.robustness(IDS, reps, feats, metrics="cka")


def test_single_modality_run_and_small_encoders():
    reps, feats, lengths = _run()
    vision_only = {"vis": feats["vis"]}
    for table in (
        AN.length_curve(IDS, reps, vision_only, gen_lengths=lengths, settings=S(k=5)),
        AN.layerwise(IDS, reps, vision_only, settings=S(k=5)),
        AN.paired_cue_comparisons(IDS, reps, vision_only, settings=S(k=5, n_perm=50)),
        AN.permutation_table(IDS, reps, vision_only, settings=S(k=5, n_perm=20)),
    ):
        assert set(table["encoder"]) == {"vis"}
    tiny = {"aud": ("audio", IDS[:4], np.ones((4, 3)))}
    with pytest.warns(UserWarning, match="shares only 4 items"):
        assert AN.layerwise(IDS, reps, tiny, settings=S(k=5)).empty
    assert isinstance(AN.paired_cue_comparisons(IDS, reps, {}, settings=S(k=5)), pd.DataFrame)


def test_encoder_agreement_is_perfect_for_one_space_and_lowers_k_for_few_items():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 5))
    feats = {"a": (IDS[:20], x), "b": (IDS[:20][::-1], 2.0 * x[::-1]), "c": (IDS[:6], rng.normal(size=(6, 5)))}
    table = AN.encoder_agreement(feats, k=10).set_index(["a", "b"])
    # a and b are the same space (rescaled, listed in reverse): every neighbour shared
    assert table.loc[("a", "b"), "mutual_knn"] == pytest.approx(1.0) and table.loc[("a", "b"), "n_items"] == 20
    # c shares 6 items: k drops to 5 = every other item, so any two spaces agree completely
    assert table.loc[("a", "c"), "k"] == 5 and table.loc[("a", "c"), "mutual_knn"] == pytest.approx(1.0)
    assert table.loc[("a", "c"), "chance"] == pytest.approx(1.0)
    assert AN.encoder_agreement({"only": (IDS[:5], x[:5])}).empty


def test_layer_norms_average_each_layers_norm_over_items():
    arr = np.zeros((2, 3, 2))
    arr[0, :, 0] = [3.0, 0.0, 1.0]
    arr[1, :, 1] = [5.0, 2.0, 1.0]  # norms per layer: (3+5)/2, (0+2)/2, (1+1)/2
    norms = AN.layer_norms({"SEE/gen_mean": arr, "SEE/prompt_last": arr * 10})
    assert norms["cue"].tolist() == ["SEE"] * 3 and norms["norm"].tolist() == [4.0, 1.0, 1.0]


def test_generation_lengths_follow_the_ids_order():
    gens = pd.DataFrame(
        {"cue": ["SEE", "SEE", "NONE", "NONE"], "id": ["b", "a", "a", "b"], "n_gen_tokens": [7, 3, 5, 9]}
    )
    lengths, longest = GL.generation_lengths(gens, ["a", "b"], ["SEE", "NONE"])
    assert lengths["SEE"].tolist() == [3, 7] and lengths["NONE"].tolist() == [5, 9] and longest == 9


def test_kind_vectors_leave_prefixes_to_the_length_curve():
    reps, _, _ = _run()
    vectors = AN.kind_vectors(IDS, reps, first_layer=1)
    assert set(vectors) == {f"{c}/{k}" for c in CUES for k in ("gen_mean", "prompt_last", "prompt_mean")}
    ids, x = vectors["SEE/prompt_mean"]
    assert ids == IDS and np.allclose(x, reps["SEE/prompt_mean"][:, 1:].mean(axis=1))


def _gens_with_early_stops() -> pd.DataFrame:
    """T = 8: SEE runs to T on all four items; NONE stops at EOS on three of them (after 2, 4 and 6 tokens)."""
    return pd.DataFrame(
        {
            "cue": ["SEE"] * 4 + ["NONE"] * 4,
            "id": list("abcd") * 2,
            "n_gen_tokens": [8, 8, 8, 8, 2, 4, 6, 8],
            "stopped_at_eos": [False] * 4 + [True, True, True, False],
            "max_new_tokens": 8,
        }
    )


def test_generation_length_summary_counts_eos_and_tokens_per_cue():
    s = GL.generation_length_summary(_gens_with_early_stops()).set_index("cue")
    assert list(s.index) == ["SEE", "NONE"]  # 02's cue order
    assert s.loc["SEE", "eos_rate"] == 0.0 and s.loc["NONE", "eos_rate"] == 0.75
    assert s.loc["SEE", "mean_tokens"] == 8.0 and s.loc["NONE", "mean_tokens"] == 5.0  # (2+4+6+8)/4
    assert s.loc["NONE", "median_tokens"] == 5.0 and s.loc["NONE", "min_tokens"] == 2
    assert s.loc["NONE", "mean_fraction_of_T"] == 5.0 / 8 and (s["n_items"] == 4).all()


def test_length_confound_note_names_the_extreme_cues_only_when_they_differ():
    gens = _gens_with_early_stops()
    note = GL.length_confound_note(GL.generation_length_summary(gens))
    assert note.startswith("length confound: NONE stopped at EOS in 75%") and "against 0% for SEE" in note
    assert "5.0 vs 8.0 tokens of T = 8" in note
    alike = gens.assign(stopped_at_eos=False, n_gen_tokens=8)
    alike.loc[0, ["stopped_at_eos", "n_gen_tokens"]] = [True, 3]  # SEE 25 %, NONE 0 %: above a 10 % gap
    assert GL.length_confound_note(GL.generation_length_summary(alike)).startswith("length confound: SEE")
    assert "less than 30%" in GL.length_confound_note(GL.generation_length_summary(alike), min_gap=0.30)
    assert "one cue only" in GL.length_confound_note(GL.generation_length_summary(gens[gens["cue"] == "SEE"]))


def test_length_curve_notes_give_each_cues_frac_shorter_and_eos_rate():
    gens = _gens_with_early_stops()
    ids = list("abcd")
    rng = np.random.default_rng(0)
    reps = {
        f"{c}/{k}": rng.normal(size=(4, 2, 3))
        for c in ("SEE", "NONE")
        for k in ("gen_mean", "prompt_last", "prompt_mean", "prefix_T4")
    }
    feats = {"vis": ("vision", ids, rng.normal(size=(4, 3)))}
    lengths, full_T = GL.generation_lengths(gens, ids, ["SEE", "NONE"])
    curve = AN.length_curve(ids, reps, feats, gen_lengths=lengths, full_T=full_T, settings=S(k=2))
    see, none = GL.length_curve_notes(curve, GL.generation_length_summary(gens))
    assert see.startswith("SEE: 0% of generations stopped at EOS") and "T=4: 0%, T=8: 0%" in see and "close to T" in see
    # NONE: lengths 2, 4, 6, 8 -> before T=4 only the 2 (25 %), before T=8 three of four (75 %)
    assert none.startswith("NONE: 75% of generations stopped at EOS") and "T=4: 25%, T=8: 75%" in none
    assert "fewer tokens than T" in none


def test_length_confound_note_when_every_cue_stops_alike():
    gens = _gens_with_early_stops().assign(stopped_at_eos=False, n_gen_tokens=8)
    note = GL.length_confound_note(GL.generation_length_summary(gens))
    assert note.startswith("every cue stopped at EOS in 0%") and "SEE" not in note
