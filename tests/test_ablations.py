"""Sensory-word ablations: seeded random-word captions, removal and its control, re-encoding, paired alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.analyses import ablations as A
from helpers.core.settings import AlignmentSettings as S
from helpers.data.lexicon import Lexicon, load_lexicon, word_spans

VISUAL = Lexicon("visual", frozenset({"red", "bright", "glowing", "shiny", "dark", "tiny", "blue", "pale"}))


def test_random_words_are_seeded_distinct_and_from_the_lexicon():
    a = A.random_words(VISUAL, 5, A.item_rng(0, "x"))
    assert a == A.random_words(VISUAL, 5, A.item_rng(0, "x"))
    assert len(set(a)) == 5 and set(a) <= VISUAL.words
    assert a != A.random_words(VISUAL, 5, A.item_rng(1, "x"))
    with pytest.raises(ValueError, match="cannot draw 9"):
        A.random_words(VISUAL, 9, A.item_rng(0))


def test_random_words_sample_primary_spellings_only():
    lex = Lexicon("visual", frozenset({"gray", "grey", "red"}), primary=("gray", "red"))
    drawn = {w for s in range(30) for w in A.random_words(lex, 2, A.item_rng(s))}
    assert drawn == {"gray", "red"}


def test_append_and_replace_shapes():
    caps = A.random_word_captions(["a", "b"], ["a cat", "a dog."], VISUAL, "append", 3, seed=0)
    assert list(caps.columns) == ["id", "caption", "new_caption", "words"]
    for row in caps.itertuples():
        assert row.new_caption.startswith(row.caption.rstrip(".") + ", ")
        assert row.new_caption.split(", ")[1:] == list(row.words) and len(row.words) == 3
    rep = A.random_word_captions(["a", "b"], ["a cat", "a dog"], VISUAL, "replace", 4, seed=0)
    for row in rep.itertuples():
        assert row.new_caption.split(", ") == list(row.words) and len(row.words) == 4
        assert "cat" not in row.new_caption and "dog" not in row.new_caption
    with pytest.raises(ValueError, match="mode"):
        A.random_word_captions(["a"], ["a cat"], VISUAL, "prepend", 3)


def test_item_words_do_not_depend_on_other_items():
    one = A.random_word_captions(["b"], ["a dog"], VISUAL, "append", 3, seed=7)
    two = A.random_word_captions(["a", "b"], ["a cat", "a dog"], VISUAL, "append", 3, seed=7)
    assert one.iloc[0]["new_caption"] == two.iloc[1]["new_caption"]
    # each item draws its own words: over many items, not all draw the same ones
    many = A.random_word_captions([f"i{j}" for j in range(20)], ["a dog"] * 20, VISUAL, "append", 3, seed=7)
    assert many["words"].map(tuple).nunique() > 10


TEXTS = [
    "The bright red ball glows on the dark grass beside a tiny wooden house while children play outside.",
    "A quiet field with a fence and an old barn.",
    "Shiny, shiny, shiny!",
]


def test_removal_table_counts_and_matched_control():
    table = A.removal_table(["t0", "t1", "t2"], TEXTS, VISUAL, seed=0)
    assert table["n_sensory"].tolist() == [5, 0, 3]  # bright red glows dark tiny | none | shiny x3
    assert table.loc[0, "sensory_text"] == "The ball on the grass beside a wooden house while children play outside."
    assert table.loc[1, "sensory_text"] == TEXTS[1] and table.loc[1, "control_text"] == TEXTS[1]
    # the control removes as many words, none of them sensory and none a stopword
    row = table.loc[0]
    assert row["n_control"] == 5 and row["control_shortfall"] == 0
    before = [w for *_, w in word_spans(TEXTS[0])]
    after = [w for *_, w in word_spans(row["control_text"])]
    assert len(before) - len(after) == 5
    removed = list(before)
    for w in after:
        removed.remove(w)
    assert not any(VISUAL.matches(w) or w.lower() in A.STOPWORDS for w in removed), removed
    # a text with nothing but sensory words leaves no candidates: the shortfall is reported
    assert table.loc[2, "n_control"] == 0 and table.loc[2, "control_shortfall"] == 3
    # seeded: the same control again, another with another seed
    assert A.removal_table(["t0"], TEXTS[:1], VISUAL, seed=0)["control_text"].iloc[0] == row["control_text"]
    other = {A.removal_table(["t0"], TEXTS[:1], VISUAL, seed=s)["control_text"].iloc[0] for s in range(1, 6)}
    assert other - {row["control_text"]}


def test_removal_counts_summary():
    table = A.removal_table(["t0", "t1", "t2"], TEXTS, VISUAL, seed=0)
    counts = A.removal_counts(table, "SEE")
    sens = counts[counts["removed"] == "sensory words"].iloc[0]
    assert sens["total"] == 8 and sens["texts_with_removal"] == 2 and sens["max_per_text"] == 5
    assert sens["mean_per_text"] == pytest.approx(8 / 3) and sens["median_per_text"] == 3
    assert sens["share_of_words"] == pytest.approx(8 / table["n_words"].sum())
    ctrl = counts[counts["removed"] == "random non-sensory words"].iloc[0]
    assert ctrl["total"] == 5


def test_shipped_lexicon_on_realistic_generations():
    auditory = load_lexicon("auditory")
    table = A.removal_table(["h"], ["The sound of rustling leaves and a loud, whistling wind."], auditory)
    assert table["n_sensory"].iloc[0] == 4  # sound, rustling, loud, whistling
    assert table["sensory_text"].iloc[0] == "The of leaves and a, wind."


def test_paired_alignment_identical_and_scrambled():
    rng = np.random.default_rng(0)
    n, k = 40, 5
    enc = rng.normal(size=(n, 8))
    ids = [f"i{j}" for j in range(n)]
    base = enc @ rng.normal(size=(8, 16))
    reps = {
        "base": (ids, base),
        "same": (ids, base + 1e-6 * rng.normal(size=base.shape)),
        "noise": (ids, rng.normal(size=(n, 16))),
        "half": (ids[: n // 2 + 10], enc[: n // 2 + 10] @ rng.normal(size=(8, 16))),
    }
    feats = {"vis": ("vision", ids[::-1], enc[::-1])}  # encoder rows in another order
    out = A.paired_alignment(reps, {"same": "base", "noise": "base", "half": "base"}, feats, settings=S(k=k))
    rows = out.set_index("condition")
    assert rows.loc["same", "diff"] == pytest.approx(0, abs=1e-9) and rows.loc["same", "p_value"] == 1.0
    assert rows.loc["same", "baseline_score"] > 0.5
    assert rows.loc["noise", "diff"] < -0.5 and rows.loc["noise", "p_value"] < 0.01
    assert rows.loc["noise", "ci_high"] < 0
    assert rows.loc["half", "n_items"] == n // 2 + 10  # only the items both conditions cover
    assert rows.loc["noise", "chance"] == pytest.approx(k / (n - 1))
    with pytest.raises(KeyError, match="missing"):
        A.paired_alignment(reps, {"missing": "base"}, feats, settings=S(k=k))


@pytest.mark.slow
def test_reencoding_edited_text_with_tiny_models(llms):
    from helpers import lm as L

    for model in llms.values():
        prompt = L.format_prompt(model, "Imagine what it would look like to see a red ball.")
        gen = L.generate(model, [prompt], max_new_tokens=12)[0]
        fidelity = A.retokenization_fidelity(model.tokenizer, [gen["text"]], [gen["gen_ids"]])
        # the fraction of texts whose re-tokenisation gives back the generated ids, computed by hand
        expected = float(A.retokenize(model.tokenizer, [gen["text"]])[0] == list(gen["gen_ids"]))
        assert fidelity == expected
        text = "a bright red ball glows in the dark room"
        table = A.removal_table(["x"], [text], VISUAL)
        edited = A.edited_generations(model.tokenizer, [gen["prompt_ids"]] * 2, [text, table["sensory_text"].iloc[0]])
        assert edited[0]["gen_ids"] == model.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert 0 < len(edited[1]["gen_ids"]) < len(edited[0]["gen_ids"])
        assert all(e["prompt_ids"] == list(gen["prompt_ids"]) for e in edited)
        reps = L.represent(
            model, [e["prompt_ids"] for e in edited], [e["gen_ids"] for e in edited], show_progress=False
        )
        full, cut = reps[0]["gen_mean"], reps[1]["gen_mean"]
        assert full.shape == cut.shape and np.isfinite(cut).all()
        assert not np.allclose(full, cut)  # removing the words changes the representation
        again = L.represent(model, [edited[0]["prompt_ids"]], [edited[0]["gen_ids"]], show_progress=False)[0]
        np.testing.assert_allclose(again["gen_mean"], full, rtol=1e-4, atol=1e-5)


# --- notebook 08's steps (helpers.analyses.sensory_ablations) -------------------------------------


def _gens_and_manifest(with_sound):
    ids = ["a", "b", "c", "d"]
    manifest = pd.DataFrame(
        {
            "id": ids,
            "caption": ["x"] * 4,
            "image_path": ["i.png"] * 4,
            "audio_path": ["s.wav" if i in with_sound else None for i in ids],
        }
    )
    rows = [{"id": i, "cue": cue, "text": f"{cue} {i}"} for cue in ("NONE", "HEAR", "SEE") for i in reversed(ids)]
    return pd.DataFrame(rows), manifest


def test_ablation_items_test_hear_only_where_there_is_a_sound():
    from helpers.analyses import sensory_ablations as sa

    gens, manifest = _gens_and_manifest({"b", "d"})
    items = sa.ablation_items(gens, manifest)
    assert items.ids == {"SEE": ["d", "c", "b", "a"], "HEAR": ["d", "b"]}  # in 02's order, not the manifest's
    assert items.lexicon == {"SEE": "visual", "HEAR": "auditory"} and items.notes == []
    assert list(items.generations["HEAR"]["text"]) == ["HEAR d", "HEAR b"]
    silent = sa.ablation_items(*_gens_and_manifest(set()))  # an image-only dataset
    assert list(silent.ids) == ["SEE"] and silent.notes == [
        "HEAR: no item of this run has a auditory counterpart to test; HEAR left out of 08"
    ]
    with pytest.raises(ValueError, match=r"no \['HEAR'\] cue"):
        sa.ablation_items(gens[gens["cue"] != "HEAR"], manifest)


def test_ablation_rows_are_labelled_and_matched_to_the_cue_modality():
    from helpers.analyses import sensory_ablations as sa

    conds = ["SEE/random_append", "SEE/remove_sensory", "HEAR/random_replace", "HEAR/remove_random"]
    paired = pd.DataFrame(
        {
            "condition": [c for c in conds for _ in range(2)],
            "modality": ["vision", "audio"] * 4,
            "diff": range(8),
            "p_value": [0.001] + [0.5] * 7,
        }
    )
    out = sa.label_ablations(paired, run_name="r", append_k=3, replace_n=7, random_T=16, full_T=64)
    assert list(out.columns[:1]) == ["run"] and (out["run"] == "r").all()
    assert list(out["ablation"][::2]) == [
        "+3 random words",
        "sensory words removed",
        "caption → 7 random words",
        "random words removed (control)",
    ]
    assert list(out["T"][::2]) == [16, 64, 16, 64]
    assert list(out["family"][::2]) == ["random words", "removal", "random words", "removal"]
    matched = sa.matched_rows(out)
    assert list(zip(matched["cue"], matched["modality"])) == [("SEE", "vision")] * 2 + [("HEAR", "audio")] * 2
    assert "diff" in paired and "cue" not in paired  # the input is left as it was
    assert list(out["p_holm"]) == [0.008] + [1.0] * 7 and list(out["stars"][:2]) == [
        "**",
        "n.s.",
    ]  # Holm over all 8 rows


def test_the_interaction_is_the_generative_cue_effect_minus_the_single_pass_one():
    """SEE's generation is closer to the encoder than NONE's; the single pass is the same for both cues
    (no cue effect): the interaction equals the generative effect and is significant. With the single pass
    carrying the very same arrays as the generation, it is exactly 0."""
    from helpers.core.settings import AlignmentSettings

    rng = np.random.default_rng(0)
    n, h = 200, 16
    ids = [f"i{j}" for j in range(n)]
    enc = rng.normal(size=(n, h))
    see, none, single = (
        enc + 0.8 * rng.normal(size=(n, h)),
        enc + 2.5 * rng.normal(size=(n, h)),
        rng.normal(size=(n, h)),
    )
    reps = {
        "SEE/gen_mean": (ids, see),
        "NONE/gen_mean": (ids, none),
        "SEE/prompt_last": (ids, single),
        "NONE/prompt_last": (ids, single),
    }
    feats = {"vis": ("vision", ids, enc)}
    settings = AlignmentSettings(k=10)
    out = A.interaction_alignment(reps, feats, settings=settings)
    row = out.iloc[0]
    assert list(out["single"]) == ["prompt_last"] and row["single_effect"] == 0
    assert row["diff"] == pytest.approx(row["generative_effect"]) and row["diff"] > 0.05 and row["p_value"] < 1e-4
    paired = A.paired_alignment(reps, {"SEE/gen_mean": "NONE/gen_mean"}, feats, settings=settings).iloc[0]
    assert row["generative_effect"] == pytest.approx(paired["diff"])
    same = {**reps, "SEE/prompt_last": (ids, see), "NONE/prompt_last": (ids, none)}
    flat = A.interaction_alignment(same, feats, settings=settings).iloc[0]
    assert flat["diff"] == 0 and flat["p_value"] == 1.0


def test_each_ablation_is_compared_with_its_control_directly():
    from helpers.analyses import sensory_ablations as sa

    comps = {
        "SEE/remove_sensory": "SEE/full",
        "SEE/remove_random": "SEE/full",
        "HEAR/remove_sensory": "HEAR/full",
        "SEE/random_append": "SEE/T64",
    }
    assert sa.direct_controls(comps) == {"SEE/remove_sensory": "SEE/remove_random"}  # HEAR has no control here
    comps["SEE/nonsensory_append"] = "SEE/T64"
    assert sa.direct_controls(comps) == {
        "SEE/remove_sensory": "SEE/remove_random",
        "SEE/random_append": "SEE/nonsensory_append",
    }
    paired = pd.DataFrame(
        {
            "condition": ["SEE/remove_sensory", "SEE/remove_sensory"],
            "baseline": ["SEE/full", "SEE/remove_random"],
            "p_value": [0.01, 0.02],
            "diff": [-0.02, -0.01],
        }
    )
    out = sa.label_ablations(paired, run_name="r", append_k=5, replace_n=5, random_T=64, full_T=128)
    assert out["ablation"].tolist() == ["sensory words removed", "sensory − random words removed"]
