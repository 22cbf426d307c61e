"""The whole notebook chain, executed headlessly with papermill on the `tiny` profile.

Real embedded models and the real Tux Paint data (fetched once into data/raw);
outputs go to a temporary folder, the model/feature cache is the project's.
"""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from helpers import runner

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
