"""helpers.analyses.transfer: the transfer test's names, readings and verdicts, on runs with a known answer."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
from tiny_models import PROMPTS  # noqa: E402

from helpers import lm as L
from helpers.analyses import transfer as X
from helpers.core.settings import AlignmentSettings, LMSettings

N, D = 600, 12
IDS = [f"i{j:03d}" for j in range(N)]
SETTINGS = AlignmentSettings(k=5, seed=0)


def _world(read: str, writer_effect: bool = True):
    """Two LLMs A and B, a vision encoder; A's SEE vectors are the images' own (an effect) unless told not.

    ``read``: what B's representation of A's texts is: ``"A"`` (A's own vectors: the effect travels),
    ``"B"`` (B's own vectors: it stays with the writer).
    """
    rng = np.random.default_rng(1)
    images = rng.normal(size=(N, D))
    noise = lambda: rng.normal(size=(N, D))  # noqa: E731
    a = {"SEE": images + 0.3 * noise() if writer_effect else noise(), "HEAR": noise(), "NONE": noise()}
    b = {"SEE": noise(), "HEAR": noise(), "NONE": noise()}
    reading = a if read == "A" else b
    reps = {}
    for cue in ("SEE", "HEAR", "NONE"):
        reps[X.name("A", "A", cue)] = (IDS, a[cue])
        reps[X.name("B", "B", cue)] = (IDS, b[cue])
        reps[X.name("B", "A", cue)] = (IDS, reading[cue] + 1e-3 * noise())
        reps[X.name("A", "B", cue)] = (IDS, b[cue] + 1e-3 * noise())
    feats = {"img": ("vision", IDS, images)}
    return reps, feats


def test_names_round_trip_with_hub_ids():
    key = X.name("Qwen/Qwen3-8B", "Qwen/Qwen3-0.6B", "SEE")
    assert X.split_name(key) == ("Qwen/Qwen3-8B", "Qwen/Qwen3-0.6B", "SEE")
    assert X.reading_label("Qwen/Qwen3-8B", "Qwen/Qwen3-0.6B") == "Qwen3-8B reads Qwen3-0.6B"
    assert X.reading_label("smollm2-135m-instruct", "smollm2-135m-instruct") == "smollm2-135m's own"


def test_an_effect_carried_by_the_text_travels():
    reps, feats = _world(read="A")
    con = X.contrasts(reps, ["A", "B"], feats, SETTINGS)
    row = con[(con["writer"] == "A") & (con["reader"] == "B")].iloc[0]
    assert row["cue"] == "SEE" and row["writer_effect"] > 0.2 and row["read_effect"] > 0.2
    assert X.verdict(row) == "travels with the text" and row["fraction"] == pytest.approx(1.0, abs=0.05)
    assert "travels with the text" in X.conclusion(con)


def test_an_effect_in_the_writers_states_stays_with_the_writer():
    reps, feats = _world(read="B")
    con = X.contrasts(reps, ["A", "B"], feats, SETTINGS)
    row = con[(con["writer"] == "A") & (con["reader"] == "B")].iloc[0]
    assert row["writer_effect"] > 0.2 and abs(row["read_effect"]) < 0.1
    assert row["read_minus_writer_high"] < 0  # reading is significantly below writing
    assert (
        row["read_equiv_p_holm"] < 0.05
        and abs(row["fraction"]) < 0.2
        and row["fraction_low"] < 0 < row["fraction_high"]
    )
    assert X.verdict(row) == "stays with the writer"


def test_a_reading_that_is_neither_equivalent_nor_different_is_undetermined():
    reps, feats = _world(read="A")
    con = X.contrasts(
        {k: (ids[:80], x[:80]) for k, (ids, x) in reps.items()},
        ["A", "B"],
        {"img": ("vision", IDS[:80], feats["img"][2][:80])},
        SETTINGS,
    )
    row = con[(con["writer"] == "A") & (con["reader"] == "B")].iloc[0].copy()
    row["read_minus_writer_equiv_p_holm"], row["read_equiv_p_holm"], row["read_p_holm"] = 0.3, 0.3, 0.3
    assert X.verdict(row) == "undetermined"
    assert (con["writer_p_holm"] >= con["writer_p"]).all()  # Holm across the rows


def test_no_writer_effect_has_nothing_to_transfer():
    reps, feats = _world(read="A", writer_effect=False)
    con = X.contrasts(reps, ["A", "B"], feats, SETTINGS)
    assert set(X.verdict(r) for _, r in con.iterrows()) == {"no effect to transfer"}


def test_cue_effects_label_each_reading_and_only_audio_pairs_hear():
    reps, feats = _world(read="A")
    eff = X.cue_effects(reps, feats, SETTINGS)
    assert set(eff["reading"]) == {"A's own", "B's own", "B reads A", "A reads B"}
    assert set(eff["comparison"]) == {"SEE-NONE", "HEAR-NONE"} and len(eff) == 4 * 2
    assert eff["matched"].tolist() == (eff["cue"] == "SEE").tolist()  # one vision encoder: SEE is the matched cue
    assert {"p_holm", "stars", "diff", "ci_low", "ci_high"} <= set(eff.columns)


def test_reading_ones_own_text_gives_ones_own_representation(llms):
    """A model reading its own generation (re-tokenised) is its own fused representation, within float tolerance."""
    llm = llms["llama"]
    prompts = [L.format_prompt(llm, p) for p in PROMPTS]
    gens = L.generate_and_represent(llm, prompts, L.Decoding(max_new_tokens=6), batch_size=4, show_progress=False)
    texts = pd.DataFrame(
        {
            "writer": "w",
            "cue": "SEE",
            "id": [f"p{j}" for j in range(len(PROMPTS))],
            "user_text": PROMPTS,
            "text": [g["text"] for g in gens],
        }
    )
    reps = X.read_texts(llm, texts, reader="r", lm_settings=LMSettings(llm="r", rep_batch_size=2))
    ids, got = reps[X.name("r", "w", "SEE")]
    want = np.stack([g["representation"]["gen_mean"].mean(0) for g in gens])
    same = [
        i for i, g in enumerate(gens) if llm.tokenizer(g["text"], add_special_tokens=False)["input_ids"] == g["gen_ids"]
    ]
    assert same, "no generation re-tokenises exactly"
    np.testing.assert_allclose(got[same], want[same], rtol=1e-4, atol=1e-5)


def test_two_models_are_needed():
    with pytest.raises(ValueError, match="two or more different LLMs"):
        X.transfer_representations(["a", "a"], pd.DataFrame(), {}, None, load_model=None, T=4, lm_settings=LMSettings())
