"""The whole notebook chain, executed headlessly with papermill on the `tiny` profile.

Real embedded models and the real Tux Paint data (fetched once into data/raw);
outputs go to a temporary folder, the model/feature cache is the project's.
"""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from helpers.run import runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("outputs")
    params = runner.load_profile("tiny")
    executed = runner.run_notebooks(params, outputs=outputs, log_output=False)
    return outputs, params, executed


def test_chain_produces_results_table(tiny_run):
    outputs, params, executed = tiny_run
    assert [p.name for p in executed] == [p.name for p in runner.numbered_notebooks()]
    assert [p.name[:2] for p in executed[:5]] == ["01", "02", "03", "04", "05"]
    table = pd.read_csv(outputs / "results" / "tiny" / "alignment.csv")
    records = json.loads((outputs / "results" / "tiny" / "alignment.json").read_text())
    assert len(records) == len(table)
    encoders = params["vision_encoders"] + params["audio_encoders"]
    # 3 cues x 3 representation kinds x every encoder
    assert len(table) == 3 * 3 * len(encoders)
    assert set(table["cue"]) == {"SEE", "HEAR", "NONE"} and set(table["encoder"]) == set(encoders)
    assert table["score"].between(0, 1).all()
    assert (table["ci_low"] <= table["score"] + 1e-12).all() and (table["score"] <= table["ci_high"] + 1e-12).all()
    vision = table[table["modality"] == "vision"]
    assert (vision["n_items"] == params["n_items"]).all() and (table["k"] == params["k"]).all()


def test_chain_saves_figures_png_and_pdf(tiny_run):
    outputs, _, _ = tiny_run
    figures = outputs / "figures" / "tiny"
    for stem in ("01_gallery", "03_layer_norms", "05_alignment_bars", "05_alignment_scatter"):
        for ext in ("png", "pdf"):
            assert (figures / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext}"


def test_executed_notebooks_are_clean_and_readable(tiny_run):
    _, params, executed = tiny_run
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1, path.name
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                assert out.get("output_type") != "error", f"{path.name}: {out.get('ename')}"
                # progress bars are plain text, not widget state nobody can read in a log
                assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), path.name
    text = _stdout(executed[1])
    assert "to compute" in text
    assert text.count("\r") < 50, "headless progress bars must not flood the output"


def test_generations_store_exact_prompts(tiny_run):
    outputs, params, _ = tiny_run
    gens = pd.read_parquet(outputs / "runs" / "tiny" / "generations.parquet")
    assert len(gens) == 3 * params["n_items"]
    see = gens[gens["cue"] == "SEE"].iloc[0]
    assert f"Imagine what it would look like to see {see['caption']}." in see["prompt"]
    assert (gens["n_gen_tokens"] <= params["max_new_tokens"]).all() and (gens["n_gen_tokens"] > 0).all()
    assert gens["text"].str.len().gt(0).all()


def _stdout(path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout")


def test_rerun_hits_the_cache(tiny_run):
    outputs, params, _ = tiny_run
    rerun = runner.run_notebooks(
        params, runner.select(runner.numbered_notebooks(), ["02", "03"]), outputs=outputs, log_output=False
    )
    n_prompts = 3 * params["n_items"]
    for path in rerun:
        assert f"{n_prompts} cached, 0 to compute" in _stdout(path), path.name


# ---------------------------------------------------------------------------- 06 length/layers, 07 statistics


def _results(outputs, stem):
    table = pd.read_csv(outputs / "results" / "tiny" / f"{stem}.csv")
    assert len(json.loads((outputs / "results" / "tiny" / f"{stem}.json").read_text())) == len(table)
    return table


def test_representations_keep_prefix_means(tiny_run):
    outputs, params, _ = tiny_run
    from helpers.data.artifacts import load_arrays

    ids, arrays = load_arrays(outputs / "runs" / "tiny" / "representations.npz")
    kinds = {"gen_mean", "prompt_last", "prompt_mean"} | {f"prefix_T{t}" for t in params["prefix_lengths"]}
    assert set(arrays) == {f"{cue}/{kind}" for cue in ("SEE", "HEAR", "NONE") for kind in kinds}
    assert len(ids) == params["n_items"] and all(a.shape == arrays["SEE/gen_mean"].shape for a in arrays.values())


def test_length_and_layer_notebook_outputs(tiny_run):
    outputs, params, _ = tiny_run
    figures = outputs / "figures" / "tiny"
    for stem in ("06_length_curve", "06_layerwise", "07_calibrated_scores", "07_paired_comparisons"):
        for ext in ("png", "pdf"):
            assert (figures / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext}"
    encoders = params["vision_encoders"] + params["audio_encoders"]
    curve = _results(outputs, "length_curve")
    # per cue x encoder: T=0 (last prompt token, prompt mean), every prefix shorter than the longest generation, full
    gens = pd.read_parquet(outputs / "runs" / "tiny" / "generations.parquet")
    full_t = int(gens["n_gen_tokens"].max())
    prefixes = [t for t in params["prefix_lengths"] if t < full_t]
    assert len(curve) == 3 * len(encoders) * (3 + len(prefixes))
    assert sorted(set(curve["T"])) == [0, *prefixes, full_t]
    assert curve["score"].between(0, 1).all() and (curve["ci_low"] <= curve["score"] + 1e-12).all()
    # the full point of the curve is notebook 05's generative score
    table = pd.read_csv(outputs / "results" / "tiny" / "alignment.csv")
    gen = table[table["kind"] == "generative"].set_index(["cue", "encoder"])["score"]
    full = curve[curve["representation"] == "gen_mean"].set_index(["cue", "encoder"])["score"]
    pd.testing.assert_series_equal(full.sort_index(), gen.sort_index(), check_names=False)
    layers = _results(outputs, "layerwise")
    n_layers = int(layers["layer"].max()) + 1
    assert n_layers == 31 and len(layers) == 3 * len(encoders) * n_layers and layers["score"].between(0, 1).all()
    svg = _results(outputs, "single_vs_generative")
    assert len(svg) == 3 * len(encoders) * 2 and (svg["p_holm"] >= svg["p_value"] - 1e-12).all()


def test_statistics_notebook_outputs(tiny_run):
    outputs, params, _ = tiny_run
    encoders = params["vision_encoders"] + params["audio_encoders"]
    null = _results(outputs, "permutation_null")
    assert len(null) == 3 * 3 * len(encoders)
    assert null["p_value"].between(1 / (params["n_perm"] + 1) - 1e-12, 1).all() and null["p_holm"].le(1).all()
    assert (null["null_mean"] - null["chance"]).abs().max() < 0.02  # the measured null sits at k/(n-1)
    paired = _results(outputs, "paired_comparisons")
    assert len(paired) == 3 * len(encoders)
    assert set(paired["comparison"]) == {"SEE-NONE", "HEAR-NONE", "SEE-HEAR"}
    assert ((paired["ci_low"] <= paired["diff"] + 1e-12) & (paired["diff"] <= paired["ci_high"] + 1e-12)).all()
    assert set(paired["stars"]) <= {"***", "**", "*", "n.s."}
    robust = _results(outputs, "robustness")
    ks = params["robustness_ks"]
    assert len(robust) == len(encoders) * (2 * len(ks) + 1)  # mutual k-NN and CKNNA per k, unbiased CKA once
    assert set(robust["metric"]) == {"mutual_knn", "cknna", "unbiased_cka"}
    assert robust.loc[robust["metric"] == "mutual_knn", ["SEE", "HEAR", "NONE"]].stack().between(0, 1).all()
    # the paper's effect for each encoder: SEE-NONE against vision, HEAR-NONE against audio
    matched = robust.apply(
        lambda r: r["SEE"] - r["NONE"] if r["modality"] == "vision" else r["HEAR"] - r["NONE"], axis=1
    )
    assert (matched - robust["matched_effect"]).abs().max() < 1e-9
    assert (robust["matches_paper"] == (matched > 0)).all()


def test_08_sensory_words_results(tiny_run):
    outputs, params, executed = tiny_run
    results = outputs / "results" / "tiny"
    table = pd.read_csv(results / "sensory_words.csv")
    encoders = params["vision_encoders"] + params["audio_encoders"]
    # SEE and HEAR x (append, replace, non-sensory append, remove sensory, remove random, and the two direct
    # comparisons: sensory − non-sensory appended, sensory − random removed) x every encoder
    assert len(table) == 2 * 7 * len(encoders)
    assert set(table["cue"]) == {"SEE", "HEAR"} and set(table["encoder"]) == set(encoders)
    assert (table.groupby("cue")["ablation"].nunique() == 7).all()
    assert ((table["diff"] - (table["score"] - table["baseline_score"])).abs() < 1e-9).all()
    assert ((table["ci_low"] <= table["diff"] + 1e-12) & (table["diff"] <= table["ci_high"] + 1e-12)).all()
    assert table["p_value"].between(0, 1).all() and table[["score", "baseline_score"]].stack().between(0, 1).all()
    random_rows = table["family"] == "random words"
    assert (table.loc[random_rows, "T"] == params["random_T"]).all()
    assert (table.loc[~random_rows, "T"] == params["max_new_tokens"]).all()
    assert random_rows.sum() == 2 * 4 * len(encoders)
    # a direct comparison is the difference of its two rows against the common baseline, item for item
    for cue in ("SEE", "HEAR"):
        for enc in encoders:
            rows = table[(table["cue"] == cue) & (table["encoder"] == enc)].set_index("ablation")
            direct = rows.loc["sensory − non-sensory random words appended", "diff"]
            assert direct == pytest.approx(
                rows.loc[f"+{params['random_k']} random words", "diff"]
                - rows.loc[f"+{params['random_k']} random non-sensory words (control)", "diff"]
            )
    counts = pd.read_csv(results / "sensory_words_removed.csv")
    assert len(counts) == 4 and set(counts["removed"]) == {"sensory words", "random non-sensory words"}
    assert (counts["n_texts"] == params["n_items"]).all()  # one generated text per item and cue
    assert set(counts["label"]) == {"SEE: visual words", "HEAR: auditory words"}
    for ext in ("png", "pdf"):
        assert (outputs / "figures" / "tiny" / f"08_sensory_words.{ext}").stat().st_size > 1000


def test_08_random_words_generate_and_removal_reencodes(tiny_run):
    _, params, executed = tiny_run
    nb08 = next(p for p in executed if p.name.startswith("08"))
    text = _stdout(nb08)
    assert "retokenisation fidelity" in text and "visual lexicon:" in text
    assert f"T={params['random_T']}" in text
    # greedy run: the baselines at random_T and the unedited generations come from 03, not a new pass
    for cue in ("SEE", "HEAR"):
        assert f"{cue}: baseline at T={params['random_T']} from 03 ({cue}/prefix_T{params['random_T']})" in text
    assert "re-encoding the unedited generations" not in text


def test_model_size_notebook_places_every_llm_and_cue(tiny_run):
    outputs, params, _ = tiny_run
    res = pd.read_csv(outputs / "results" / "tiny" / "model_size.csv")
    llms = params["size_llms"]
    assert list(dict.fromkeys(res["llm"])) == llms
    assert set(res["cue"]) == set(params["cues"])
    assert set(res["modality"]) == {"vision", "audio"}
    assert len(res) == len(llms) * len(params["cues"]) * res["encoder"].nunique()
    assert res["score"].between(0, 1).all() and (res["T"] == params["size_T"]).all()
    assert res.groupby("llm")["n_params"].first().gt(1e8).all()
    chat = res.groupby("llm")["chat_template"].first()
    assert bool(chat["smollm2-135m-instruct"]) and not bool(chat.get("gemma-3-270m", False))
    figs = outputs / "figures" / "tiny"
    assert any(figs.glob("09_model_size_*.png")) and any(figs.glob("09_model_size_*.pdf"))


def test_model_size_takes_the_runs_own_llm_from_its_prefix_means(tiny_run):
    """09's point for the run's LLM at size_T is 06's length-curve point at T = size_T: no new generation."""
    outputs, params, _ = tiny_run
    results = outputs / "results" / "tiny"
    res = pd.read_csv(results / "model_size.csv")
    curve = pd.read_csv(results / "length_curve.csv")
    assert params["size_T"] in set(curve["T"])
    own = res[res["llm"] == params["llm"]].set_index(["cue", "encoder"])["score"].sort_index()
    at_T = curve[(curve["T"] == params["size_T"]) & (curve["representation"] == "prefix")]
    pd.testing.assert_series_equal(own, at_T.set_index(["cue", "encoder"])["score"].sort_index(), check_names=False)
    others = res[res["llm"] != params["llm"]]
    assert len(others) and others["score"].between(0, 1).all()


def test_11_paper_figures_uses_the_runs_own_results(tiny_run):
    """Alone (no cross_runs), 11 places the run's own 05 and 09 points in its (vision, audio) plane."""
    outputs, params, executed = tiny_run
    nb11 = next(p for p in executed if p.name == "11_paper_figures.ipynb")
    results = outputs / "results" / "tiny"
    plane = _results(outputs, "cross_plane")
    audio = params["audio_encoders"]
    n_points = len(params["cues"]) * (len(params["size_llms"]) + 1)  # 09's LLMs and 05's own point, per cue
    assert len(plane) == len(audio) * n_points and set(plane["audio_encoder"]) == set(audio)
    assert set(plane["vision_run"]) == set(plane["audio_run"]) == {"tiny"}
    gen = pd.read_csv(results / "alignment.csv").query("kind == 'generative'").set_index(["cue", "encoder"])["score"]
    own = plane[plane["source"] == "alignment"]
    assert (own["T"] == params["max_new_tokens"]).all() and (own["llm"] == params["llm"]).all()
    for row in own.itertuples():
        assert (
            row.vision_score == gen[(row.cue, row.vision_encoder)]
            and row.audio_score == gen[(row.cue, row.audio_encoder)]
        )
    size = pd.read_csv(results / "model_size.csv").set_index(["llm", "cue", "encoder"])["score"]
    for row in plane[plane["source"] == "model_size"].itertuples():
        assert row.vision_score == size[(row.llm, row.cue, row.vision_encoder)]
        assert row.audio_score == size[(row.llm, row.cue, row.audio_encoder)]
    figures = outputs / "figures" / "tiny"
    for stem in [f"11_plane_tiny-{params['vision_encoders'][0]}_vs_tiny-{a}" for a in audio] + [
        "11_model_size",
        "11_length_vision",
        "11_length_audio",
        "11_cue_effects",
    ]:
        for ext in ("png", "pdf"):
            assert (figures / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext}"
    assert "combining ['tiny']: same LLMs, cues, T and k" in _stdout(nb11)


def test_12_transfer_reads_every_writer_with_every_other_reader(tiny_run):
    """12: each LLM's own texts and each LLM reading the other's, aligned; its own points are 09's."""
    outputs, params, executed = tiny_run
    assert any(p.name == "12_transfer.ipynb" for p in executed)
    llms, cues = params["transfer_llms"], set(params["cues"])
    res = _results(outputs, "transfer_alignment")
    pairs = set(zip(res["reader"], res["writer"]))
    assert pairs == {(r, w) for r in llms for w in llms} and set(res["cue"]) == cues
    assert res["score"].between(0, 1).all() and (res["T"] == params["size_T"]).all()
    size = _results(outputs, "model_size").set_index(["llm", "cue", "encoder"])["score"]
    own = res[res["reader"] == res["writer"]]
    for row in own.itertuples():  # a model's own reading is 09's point (the same cached generation)
        assert row.score == pytest.approx(size[(row.writer, row.cue, row.encoder)], abs=1e-12)
    contrasts = _results(outputs, "transfer_contrasts")
    assert len(contrasts) and set(contrasts["writer"]) == set(llms)
    nb12 = next(p for p in executed if p.name == "12_transfer.ipynb")
    last = nbformat.read(nb12, as_version=4).cells[-1].outputs
    said = "".join(o.get("data", {}).get("text/markdown", "") for o in last)
    assert "(writer, reader, cue, encoder) tests: " in said and "**" in said  # the computed conclusion
    figures = outputs / "figures" / "tiny"
    assert (figures / "12_transfer_effects.png").stat().st_size > 1000


def test_13_rephrasing_runs_every_variant_and_reads_the_papers_prompts_from_the_run(tiny_run):
    """13: the paper's prompts at rephrase_T are 03's prefix means (06's length-curve point); the variants are new."""
    outputs, params, executed = tiny_run
    assert any(p.name == "13_rephrasing.ipynb" for p in executed)
    res = _results(outputs, "rephrasing_alignment")
    variants = list(dict.fromkeys(res["variant"]))
    assert variants[0] == "as in the paper" and "empty system prompt" in variants  # SmolLM2 injects a system prompt
    assert len(variants) == 5 and set(res["cue"]) == set(params["cues"])
    curve = _results(outputs, "length_curve")
    at_T = curve[(curve["T"] == params["rephrase_T"]) & (curve["representation"] == "prefix")]
    paper = res[res["variant"] == "as in the paper"].set_index(["cue", "encoder"])["score"].sort_index()
    pd.testing.assert_series_equal(paper, at_T.set_index(["cue", "encoder"])["score"].sort_index(), check_names=False)
    spread = _results(outputs, "rephrasing_spread")
    assert len(spread) and (spread["n_variants"] == 5).all()
    # the score range is the largest range of one cue's alignment over the variants, read from the alignment table
    for row in spread.itertuples():
        cue_scores = res[(res["encoder"] == row.encoder) & (res["cue"] == row.score_range_cue)]["score"]
        assert row.score_range == pytest.approx(cue_scores.max() - cue_scores.min())
    factor = _results(outputs, "rephrasing_random_factor")
    assert len(factor) == len(spread) and (factor["n_variants"] == 5).all() and (factor["interaction_df"] == 4).all()
    assert ((factor["ci_low"] <= factor["mean_effect"]) & (factor["mean_effect"] <= factor["ci_high"])).all()
    nb = next(p for p in executed if p.name == "13_rephrasing.ipynb")
    said = "".join(
        o.get("data", {}).get("text/markdown", "") for o in nbformat.read(nb, as_version=4).cells[-1].outputs
    )
    assert "matched effects:" in said and "cue × variant interaction" in said
    assert (outputs / "figures" / "tiny" / "13_rephrasing_effects.png").stat().st_size > 1000


def test_14_cue_search_chooses_on_one_half_and_tests_on_the_other(tiny_run):
    """14: every candidate scored on the search half, the winner saved for the playground and re-scored on the held-out half."""
    from helpers.analyses import cue_search

    outputs, params, executed = tiny_run
    assert executed[-1].name == "14_cue_search.ipynb"
    search = _results(outputs, "cue_search")
    assert list(search["rank"]) == list(range(1, len(search) + 1)) and search["score"].is_monotonic_decreasing
    assert {"SEE", "HEAR", "NONE"} <= set(search["cue"]) and len(search) >= 10
    winner = _results(outputs, "cue_search_winner").iloc[0]
    assert winner["cue"] == search.iloc[0]["cue"] and 0 < winner["corrected_p"] <= 1
    held = _results(outputs, "cue_search_held_out")
    assert set(held["condition"]) == {winner["cue"]} and "NONE" in set(held["baseline"]) - {winner["cue"]}
    manifest = pd.read_parquet(outputs / "runs" / "tiny" / "manifest.parquet")
    search_ids, held_ids = cue_search.split(list(manifest["id"]))  # the vision encoder covers every item
    assert set(search["n_items"]) == {len(search_ids)}
    assert set(held.loc[held["modality"] == "vision", "n_items"]) == {len(held_ids)}
    assert (outputs / "figures" / "tiny" / "14_cue_search.png").stat().st_size > 1000
