"""helpers.pipeline (generate → represent in one call) and loading a run's encoder features."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import llm as L
from helpers.artifacts import RunPaths, load_encoder_features, save_arrays
from helpers.pipeline import Decoding, cue_representations, stored_representation


def test_cue_representations_matches_the_step_by_step_path(llms, tmp_cache):
    model = llms["qwen3"]
    ids, texts = ["a", "b", "c"], ["hello world", "imagine a red apple", "see a cat"]
    res = cue_representations(model, ids, texts, Decoding(max_new_tokens=6), prefix_lengths=[2, 4])
    prompts = [L.format_prompt(model, t) for t in texts]
    gens = L.generate(model, prompts, max_new_tokens=6)
    reps = L.represent(model, [g["prompt_ids"] for g in gens], [g["gen_ids"] for g in gens], prefix_lengths=[2, 4])
    assert list(res.table["prompt"]) == prompts and list(res.table["text"]) == [g["text"] for g in gens]
    assert set(res.per_layer) == {"gen_mean", "prompt_mean", "prompt_last", "prefix_T2", "prefix_T4"}
    for j, r in enumerate(reps):
        np.testing.assert_allclose(res.per_layer["gen_mean"][j], r["gen_mean"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.per_layer["prefix_T4"][j], r["prefix_means"][1], rtol=1e-5, atol=1e-6)
    assert res.vector().shape == (3, model.hidden_size)
    np.testing.assert_allclose(res.vector(), res.per_layer["gen_mean"].mean(axis=1), rtol=1e-6)


def test_cue_representations_rejects_mismatched_inputs(llms, tmp_cache):
    with pytest.raises(ValueError, match="2 ids but 1 texts"):
        cue_representations(llms["qwen3"], ["a", "b"], ["hello"], Decoding(max_new_tokens=2))


def test_stored_representation_is_the_shorter_greedy_generation(llms, tmp_cache):
    """03's prefix mean over a long greedy generation stands in for a new short generation (08, 09)."""
    model = llms["qwen3"]
    ids, texts = ["a", "b", "c"], ["hello world", "imagine a red apple", "see a cat"]
    long = cue_representations(model, ids, texts, Decoding(max_new_tokens=8), prefix_lengths=[3])
    gens = long.table.assign(cue="SEE", template="{caption}", llm="tiny", max_new_tokens=8, do_sample=False,
                             enable_thinking=False)
    arrays = {f"SEE/{kind}": arr for kind, arr in long.per_layer.items()}
    kw = dict(llm="tiny", cue="SEE", template="{caption}", ids=ids)

    arr, key = stored_representation(gens, ids, arrays, decoding=Decoding(3), n_layers=model.n_layers + 1, **kw)
    short = cue_representations(model, ids, texts, Decoding(max_new_tokens=3))
    assert key == "SEE/prefix_T3"
    np.testing.assert_allclose(arr, short.per_layer["gen_mean"], rtol=1e-4, atol=1e-5)
    full, key = stored_representation(gens, ids, arrays, decoding=Decoding(8), **kw)
    assert key == "SEE/gen_mean" and np.array_equal(full, long.per_layer["gen_mean"])
    back, _ = stored_representation(gens, ids, arrays, decoding=Decoding(3), **{**kw, "ids": ids[::-1]})
    assert np.array_equal(back, arr[::-1])  # rows follow the ids asked for

    refusals = {
        "sampled decoding": dict(decoding=Decoding(3, do_sample=True)),
        "not recorded as greedy": dict(gens=gens.assign(do_sample=True)),
        "another model or template": dict(template="see {caption}"),
        "thinking mode": dict(enable_thinking=True),
        "no SEE/prefix_T5": dict(decoding=Decoding(5)),
        "layers, not": dict(n_layers=model.n_layers),
        "no SEE/prefix_T3 for these items": dict(ids=["a", "zzz"]),
        "no HEAR cue": dict(cue="HEAR"),
    }
    for why, change in refusals.items():
        args = {"gens": gens, "decoding": Decoding(3), **kw, **change}
        got, reason = stored_representation(args.pop("gens"), ids, arrays, **args)
        assert got is None and why in reason, (why, reason)
    got, reason = stored_representation(gens.drop(columns="do_sample"), ids, arrays, decoding=Decoding(3), **kw)
    assert got is None and "not recorded as greedy" in reason  # runs made before 02 recorded it


def test_load_encoder_features_skips_or_names_missing(tmp_path):
    run = RunPaths.of("r", tmp_path)
    save_arrays(run.features("vis"), ["x", "y"], {"features": np.ones((2, 3), np.float32)})
    feats, absent = load_encoder_features(run, ["vis"], ["aud"])
    assert list(feats) == ["vis"] and feats["vis"][0] == "vision" and feats["vis"][1] == ["x", "y"]
    assert absent == ["aud"]
    with pytest.raises(FileNotFoundError, match="04_encoder_features"):
        load_encoder_features(run, ["vis"], ["aud"], missing="raise")
