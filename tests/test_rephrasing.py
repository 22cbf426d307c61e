"""helpers.analyses.rephrasing: the variants, their reuse of the paper's prompts, and the computed verdicts."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest

from helpers import lm as L
from helpers.analyses import rephrasing as R
from helpers.core.settings import LMSettings
from helpers.data.artifacts import StoredRun

CUES = {
    "SEE": "Imagine what it would look like to see {caption}.",
    "HEAR": "Imagine what it would sound like to hear {caption}.",
    "NONE": "Imagine: {caption}.",
}
INJECTING = (
    "{% if messages[0]['role'] != 'system' %}[SYS] Be brief and kind. [/SYS]{% endif %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}[SYS] {{ m['content'] }} [/SYS]"
    "{% else %}<|user|> {{ m['content'] }} {% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_the_variants_of_the_paper_cues():
    got = {v.name: v for v in R.variants(CUES, injected_system="Be brief and kind.")}
    assert list(got) == [
        R.PAPER,
        "no final full stop",
        "caption capitalised",
        '"Imagine that" for "Imagine:"',
        "empty system prompt",
    ]
    assert got["no final full stop"].templates == {c: t[:-1] for c, t in CUES.items()}
    assert got['"Imagine that" for "Imagine:"'].templates == {"NONE": "Imagine that {caption}."}
    assert got["caption capitalised"].capitalise and got["empty system prompt"].system == ""
    assert "empty system prompt" not in {v.name for v in R.variants(CUES, injected_system=None)}  # Qwen3, no template
    assert [v.name for v in R.variants({"A": "Picture {caption}"}, None)] == [R.PAPER, "caption capitalised"]


def test_an_empty_system_message_replaces_the_injected_one(llms):
    llm = dataclasses.replace(llms["qwen3"])
    llm.tokenizer.chat_template, old = INJECTING, llm.tokenizer.chat_template
    try:
        default = L.format_prompt(llm, "a cat")
        empty = L.format_prompt(llm, "a cat", system="")
        assert "Be brief and kind." in default and "Be brief and kind." not in empty
        assert empty.endswith("<|user|> a cat <|assistant|>") and "[SYS]  [/SYS]" in empty
    finally:
        llm.tokenizer.chat_template = old


def test_unchanged_prompts_reuse_the_papers_representation(llms):
    llm = llms["llama"]  # no chat template: no system-prompt variant
    manifest = pd.DataFrame(
        {"id": [f"i{j}" for j in range(6)], "caption": ["a cat", "a dog", "rain", "a bell", "the sea", "a car"]}
    )
    empty = StoredRun(pd.DataFrame(), [], {})
    reps, made = R.variant_representations(
        llm, manifest, CUES, empty, T=3, lm_settings=LMSettings(llm="tiny", gen_batch_size=3)
    )
    source = made.set_index(["variant", "cue"])["source"]
    assert (source[R.PAPER] == "generated").all() and (source["caption capitalised"] == "generated").all()
    that = '"Imagine that" for "Imagine:"'
    assert source[(that, "NONE")] == "generated" and source[(that, "SEE")] == "the paper's"
    assert reps[R.key(that, "SEE")] is reps[R.key(R.PAPER, "SEE")]
    assert not np.allclose(reps[R.key(that, "NONE")][1], reps[R.key(R.PAPER, "NONE")][1])
    assert len(reps) == 4 * 3 and all(ids == list(manifest["id"]) for ids, _ in reps.values())


def _effects(paper: float, others: list[float], enc: str = "img") -> pd.DataFrame:
    rows = [
        {
            "variant": v,
            "cue": "SEE",
            "comparison": "SEE-NONE",
            "encoder": enc,
            "modality": "vision",
            "matched": True,
            "n_items": 100,
            "diff": d,
            "ci_low": d - 0.01,
            "ci_high": d + 0.01,
            "p_holm": 0.01 if abs(d) > 0.02 else 0.6,
        }
        for v, d in zip([R.PAPER] + [f"v{j}" for j in range(len(others))], [paper, *others])
    ]
    return pd.DataFrame(rows)


def _alignment(see: list[float], none: list[float], enc: str = "img") -> pd.DataFrame:
    names = [R.PAPER] + [f"v{j}" for j in range(len(see) - 1)]
    return pd.DataFrame(
        [
            {"variant": v, "cue": c, "encoder": enc, "score": s}
            for c, scores in (("SEE", see), ("NONE", none))
            for v, s in zip(names, scores)
        ]
    )


def test_the_spread_table_describes_the_variants():
    table = R.spread(_alignment([0.107, 0.119, 0.145], [0.119, 0.133, 0.120]), _effects(-0.012, [-0.014, 0.025]))
    row = table.iloc[0]
    assert row["score_range"] == pytest.approx(0.038) and row["score_range_cue"] == "SEE"
    assert row["sign_flips"] == 1 and row["n_variants"] == 3 and row["significant"] == 1


def _variant_reps(see_noise: list[float], none_noise: float = 2.0, n: int = 200, seed: int = 0):
    """Per variant, SEE and NONE = the encoder's features + noise (less noise: more shared neighbours)."""
    rng = np.random.default_rng(seed)
    ids = [f"i{j}" for j in range(n)]
    enc = rng.normal(size=(n, 16))
    reps = {}
    for v, s in zip([R.PAPER] + [f"v{j}" for j in range(len(see_noise) - 1)], see_noise):
        reps[R.key(v, "SEE")] = (ids, enc + s * rng.normal(size=(n, 16)))
        reps[R.key(v, "NONE")] = (ids, enc + none_noise * rng.normal(size=(n, 16)))
    return reps, {"img": ("vision", ids, enc)}


def test_a_stable_effect_holds_across_rephrasings():
    reps, feats = _variant_reps([0.9, 0.9, 0.9, 0.9])
    row = R.random_factor(reps, feats).iloc[0]
    assert row["n_variants"] == 4 and row["mean_effect"] > 0.05 and row["ci_low"] > 0
    assert row["interaction_p"] > 0.01 and R.verdict(row).startswith("holds across rephrasings")
    # the interval adds the between-variant variance to the items' error (none beyond the items' noise here)
    assert row["se"] >= row["se_items"] and row["between_extra_sd"] < row["between_sd"]


def test_an_effect_that_depends_on_the_wording_is_named():
    reps, feats = _variant_reps([0.7, 3.5, 0.7, 3.5])  # SEE helps under two wordings and hurts under two
    row = R.random_factor(reps, feats).iloc[0]
    assert row["interaction_p"] < 1e-4 and R.verdict(row).startswith("depends on the rephrasing")
    assert row["between_extra_sd"] > 0.02 and row["se"] > 2 * row["se_items"]
    text = R.conclusion(
        R.spread(_alignment([0.2] * 4, [0.1] * 4), R.effects(reps, feats)), R.random_factor(reps, feats)
    )
    assert "1 depends on the rephrasing" in text and "χ² =" in text


def test_identical_variants_have_no_interaction_and_no_between_variance():
    reps, feats = _variant_reps([1.0, 1.0])
    reps[R.key("v0", "SEE")], reps[R.key("v0", "NONE")] = reps[R.key(R.PAPER, "SEE")], reps[R.key(R.PAPER, "NONE")]
    row = R.random_factor(reps, feats).iloc[0]
    assert row["between_sd"] == 0 and row["interaction_chi2"] == pytest.approx(0, abs=1e-9)
