"""helpers.analyses.pipeline (generate → represent in one call) and loading a run's encoder features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import lm as L
from helpers.analyses.pipeline import (
    cue_representations,
    generate_table,
    model_size_representations,
    prompt_table,
    run_representations,
    stored_representation,
)
from helpers.core.settings import LMSettings
from helpers.data import prompts
from helpers.data.artifacts import (
    RunPaths,
    StoredRun,
    load_encoder_features,
    load_generations,
    save_arrays,
    save_table,
    stored_representations,
)
from helpers.lm import Decoding


def test_cue_representations_matches_the_step_by_step_path(llms, tmp_cache):
    model = llms["qwen3"]
    ids, texts = ["a", "b", "c"], ["hello world", "imagine a red apple", "see a cat"]
    res = cue_representations(model, ids, texts, Decoding(max_new_tokens=6), prefix_lengths=[2, 4])
    prompts = [L.format_prompt(model, t) for t in texts]
    gens = L.generate(model, prompts, max_new_tokens=6)
    reps = L.represent(model, [g["prompt_ids"] for g in gens], [g["gen_ids"] for g in gens], prefix_lengths=[2, 4])
    assert list(res.table["prompt"]) == prompts and list(res.table["text"]) == [g["text"] for g in gens]
    assert set(res.per_layer) == {"gen_mean", "prompt_mean", "prompt_last", "prefix_T2", "prefix_T4"}
    for j, r in enumerate(reps):  # reduced while decoding: equal to the teacher-forced pass to float tolerance
        np.testing.assert_allclose(res.per_layer["gen_mean"][j], r["gen_mean"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(res.per_layer["prefix_T4"][j], r["prefix_means"][1], rtol=1e-4, atol=1e-5)
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
    gens = long.table.assign(
        cue="SEE", template="{caption}", llm="tiny", max_new_tokens=8, do_sample=False, enable_thinking=False
    )
    arrays = {f"SEE/{kind}": arr for kind, arr in long.per_layer.items()}
    settings = LMSettings(llm="tiny")
    kw = dict(lm_settings=settings, cue="SEE", template="{caption}", ids=ids)
    stored = StoredRun(gens, ids, arrays)

    found = stored_representation(stored, decoding=Decoding(3), n_layers=model.n_layers + 1, **kw)
    short = cue_representations(model, ids, texts, Decoding(max_new_tokens=3))
    assert found.key == "SEE/prefix_T3" and found.why_not == ""
    np.testing.assert_allclose(found.array, short.per_layer["gen_mean"], rtol=1e-4, atol=1e-5)
    full = stored_representation(stored, decoding=Decoding(8), **kw)
    assert full.key == "SEE/gen_mean" and np.array_equal(full.array, long.per_layer["gen_mean"])
    back = stored_representation(stored, decoding=Decoding(3), **{**kw, "ids": ids[::-1]})
    assert np.array_equal(back.array, found.array[::-1])  # rows follow the ids asked for

    refusals = {
        "sampled decoding": dict(decoding=Decoding(3, do_sample=True)),
        "not recorded as greedy": dict(gens=gens.assign(do_sample=True)),
        "another model or template": dict(template="see {caption}"),
        "thinking mode": dict(lm_settings=settings.replace(enable_thinking=True)),
        "from another model": dict(lm_settings=settings.replace(llm="other")),
        "no SEE/prefix_T5": dict(decoding=Decoding(5)),
        "layers, not": dict(n_layers=model.n_layers),
        "no SEE/prefix_T3 for these items": dict(ids=["a", "zzz"]),
        "no HEAR cue": dict(cue="HEAR"),
    }
    for why, change in refusals.items():
        args = {"gens": gens, "decoding": Decoding(3), **kw, **change}
        got = stored_representation(StoredRun(args.pop("gens"), ids, arrays), **args)
        assert got.array is None and got.key is None and why in got.why_not, (why, got.why_not)
    got = stored_representation(StoredRun(gens.drop(columns="do_sample"), ids, arrays), decoding=Decoding(3), **kw)
    assert got.array is None and "not recorded as greedy" in got.why_not  # runs made before 02 recorded it


def test_load_encoder_features_skips_or_names_missing(tmp_path):
    run = RunPaths.of("r", tmp_path)
    save_arrays(run.features("vis"), ["x", "y"], {"features": np.ones((2, 3), np.float32)})
    feats, absent = load_encoder_features(run, ["vis"], ["aud"])
    assert list(feats) == ["vis"] and feats["vis"][0] == "vision" and feats["vis"][1] == ["x", "y"]
    assert absent == ["aud"]
    with pytest.raises(FileNotFoundError, match="04_encoder_features"):
        load_encoder_features(run, ["vis"], ["aud"], missing="raise")


def test_condition_representation_reads_the_run_or_generates(llms, tmp_cache):
    from helpers.analyses.pipeline import condition_examples, condition_representation

    model = llms["qwen3"]
    ids, texts = ["a", "b", "c"], ["hello world", "imagine a red apple", "see a cat"]
    long = cue_representations(model, ids, texts, Decoding(max_new_tokens=8), prefix_lengths=[3])
    gen_rows = L.generate(model, [L.format_prompt(model, t) for t in texts], max_new_tokens=8)
    gens = long.table.assign(
        cue="SEE",
        template="{caption}",
        llm="tiny",
        max_new_tokens=8,
        do_sample=False,
        enable_thinking=False,
        gen_ids=[g["gen_ids"] for g in gen_rows],
    )
    arrays = {f"SEE/{kind}": arr for kind, arr in long.per_layer.items()}
    kw = dict(
        lm_settings=LMSettings(llm="tiny"), cue="SEE", template="{caption}", ids=ids, user_texts=texts, first_layer=1
    )
    stored = StoredRun(gens, ids, arrays)

    got = condition_representation(model, stored, decoding=Decoding(3), **kw)
    assert got.stored_key == "SEE/prefix_T3" and got.result is None
    np.testing.assert_array_equal(got.vector, long.per_layer["prefix_T3"][:, 1:].mean(axis=1))
    shown = condition_examples(got, gens, model.tokenizer, 3)
    assert list(shown["id"]) == ["a", "b"]
    assert list(shown["text"]) == [
        model.tokenizer.decode(g["gen_ids"][:3], skip_special_tokens=True) for g in gen_rows[:2]
    ]

    new = condition_representation(model, stored, decoding=Decoding(5), **kw)  # no T=5 prefix in the run
    direct = cue_representations(model, ids, texts, Decoding(max_new_tokens=5))
    assert new.stored_key is None and "no SEE/prefix_T5" in new.why_not_stored
    np.testing.assert_allclose(new.vector, direct.vector("gen_mean", 1), rtol=1e-5, atol=1e-6)
    assert list(condition_examples(new, gens, model.tokenizer, 5)["text"]) == list(direct.table["text"][:2])


def test_removal_conditions_keep_unedited_tokens_and_drop_emptied_items(llms, tmp_cache):
    import pandas as pd

    from helpers.analyses.pipeline import removal_conditions

    model = llms["qwen3"]
    prompts = [L.format_prompt(model, t) for t in ("a red apple", "a loud bell", "a cat")]
    gens = pd.DataFrame(L.generate(model, prompts, max_new_tokens=6)).assign(id=["x", "y", "z"])
    removal = pd.DataFrame(
        {
            "sensory_text": list(gens["text"][:2]) + [""],  # x, y unchanged; z emptied
            "control_text": ["a few words", gens["text"][1], "kept"],  # x edited; y unchanged
        }
    )
    got = removal_conditions(model, gens, removal, include_embeddings=True, batch_size=2)
    assert got.ids == ["x", "y"] and got.dropped == ["z"]
    full = L.represent(model, list(gens["prompt_ids"][:2]), list(gens["gen_ids"][:2]))
    want_full = np.stack([r["gen_mean"] for r in full]).mean(axis=1)
    np.testing.assert_allclose(got.full, want_full, rtol=1e-5, atol=1e-6)
    # an unchanged text keeps its own tokens, so its representation is the full one
    np.testing.assert_allclose(got.edited["remove_sensory"], want_full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.edited["remove_random"][1], want_full[1], rtol=1e-5, atol=1e-6)
    edited = L.represent(
        model, [gens["prompt_ids"][0]], [model.tokenizer("a few words", add_special_tokens=False)["input_ids"]]
    )
    assert not np.allclose(got.edited["remove_random"][0], want_full[0])
    np.testing.assert_allclose(got.edited["remove_random"][0], edited[0]["gen_mean"].mean(axis=0), rtol=1e-4, atol=1e-5)


def test_notebook_02_and_03_steps_equal_the_one_call_path(llms, tmp_cache):
    """prompt_table → generate_table → run_representations (02, 03) give what cue_representations gives."""
    model = llms["qwen3"]
    manifest = pd.DataFrame({"id": ["a", "b"], "caption": ["a red apple", "a barking dog"]})
    table, batch = prompt_table(model, manifest, {"SEE": prompts.DEFAULT_CUES["SEE"]}, 5, 4)
    assert batch == 4 and list(table["prompt"]) == [L.format_prompt(model, t) for t in table["user_text"]]
    gens = generate_table(model, table, Decoding(max_new_tokens=5), batch_size=4, llm="tiny", enable_thinking=False)
    assert gens["llm"].tolist() == ["tiny", "tiny"] and gens["max_new_tokens"].tolist() == [5, 5]
    assert (gens["n_gen_tokens"] == gens["gen_ids"].map(len)).all() and "prompt" in table and "text" not in table
    ids, arrays, notes = run_representations(model, gens, include_embeddings=True, prefix_lengths=[2, 9], batch_size=2)
    assert ids == ["a", "b"] and set(arrays) == {
        f"SEE/{k}" for k in ("gen_mean", "prompt_mean", "prompt_last", "prefix_T2", "prefix_T9")
    }
    assert len(notes) == 1 and "[9]" in notes[0]  # 9 is not shorter than the longest generation (5)
    direct = cue_representations(
        model, ids, list(table["user_text"]), Decoding(max_new_tokens=5), prefix_lengths=[2, 9]
    )
    np.testing.assert_allclose(arrays["SEE/gen_mean"], direct.per_layer["gen_mean"], rtol=1e-5, atol=1e-6)


def test_load_generations_names_the_other_model_and_the_fix(tmp_path):
    run = RunPaths.of("r", tmp_path)
    with pytest.raises(FileNotFoundError, match="02_generation"):
        load_generations(run)
    save_table(pd.DataFrame({"id": ["x"], "cue": ["SEE"], "llm": ["model-a"]}), run.generations)
    assert load_generations(run, "model-a")["id"].tolist() == ["x"]
    with pytest.raises(ValueError, match=r"come from \['model-a'\], not llm='model-b': rerun 02 with this llm"):
        load_generations(run, "model-b")


def test_run_results_carry_the_run_name_and_stored_arrays_may_be_absent(tmp_path):
    run = RunPaths.of("myrun", tmp_path)
    gens, rep_ids, rep_arrays = stored = stored_representations(run)
    assert stored.gens is gens and gens.empty and rep_ids == [] and rep_arrays == {}
    saved = run.save_results(pd.DataFrame({"score": [0.5]}), "t")
    assert saved.columns.tolist() == ["run", "score"] and saved["run"].tolist() == ["myrun"]
    assert pd.read_csv(run.results / "t.csv").equals(saved) and (run.results / "t.json").is_file()
    again = run.save_results(saved.assign(run="other"), "t")  # a table that has its run column keeps it
    assert again["run"].tolist() == ["other"]


def test_model_size_generates_what_the_run_does_not_hold(llms, model_dirs, tmp_cache):
    model, name = llms["qwen3"], str(model_dirs["qwen3"])
    manifest = pd.DataFrame({"id": ["a", "b", "c"], "caption": ["a red apple", "a barking dog", "rain"]})
    cues = {"SEE": prompts.DEFAULT_CUES["SEE"]}
    table = prompts.build_prompts(manifest, cues)
    loaded = []

    def load(name):
        loaded.append(name)
        return L.load_llm(name)

    empty = StoredRun(pd.DataFrame(columns=["cue", "llm"]), [], {})
    reps, models, examples = model_size_representations(
        [name], table, cues, empty, load_model=load, T=3, lm_settings=LMSettings(gen_batch_size=2)
    )
    assert loaded == [name] and list(reps) == [f"{name}|SEE"]
    ids, x = reps[f"{name}|SEE"]
    assert ids == ["a", "b", "c"] and x.shape == (3, model.hidden_size)
    assert models["cues_from_03"].tolist() == [0] and models["n_layers"].tolist() == [model.n_layers]
    assert set(examples["cue"]) == {"SEE"} and len(examples) == 2
