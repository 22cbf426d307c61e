"""Notebook 11 and helpers.run.crossrun on constructed run folders with known numbers.

A vision-only run (``vis``: dinov2-base) and an audio-only run (``aud``: beats) made with the
same settings; every score below is written out by hand, so the plane's (vision, audio) pairs
can be checked point by point.
"""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from helpers.data.artifacts import RunPaths, save_table
from helpers.data.prompts import DEFAULT_CUES
from helpers.run import crossrun, runner

SMALL, MID, LARGE = "Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B", "Qwen/Qwen3-4B"
N_PARAMS = {SMALL: 6e8, MID: 1.7e9, LARGE: 4e9}
# 09's scores: vision = base + SEE bonus (SEE only), audio = base + HEAR bonus (HEAR only)
VISION_BASE = {SMALL: 0.20, MID: 0.25, LARGE: 0.30}
SEE_BONUS = {SMALL: 0.01, MID: 0.03, LARGE: 0.05}
AUDIO_BASE = {SMALL: 0.10, MID: 0.12, LARGE: 0.14}
HEAR_BONUS = {SMALL: 0.02, MID: 0.03, LARGE: 0.04}
# 05's generative scores of the run's own LLM (SMALL, T = 128): different numbers from 09's on purpose
OWN = {"vision": {"SEE": 0.26, "HEAR": 0.21, "NONE": 0.20}, "audio": {"SEE": 0.09, "HEAR": 0.15, "NONE": 0.11}}
ENCODER = {"vision": "dinov2-base", "audio": "beats"}
N_ITEMS = {"vision": 1024, "audio": 900}


def size_score(modality: str, llm: str, cue: str) -> float:
    if modality == "vision":
        return VISION_BASE[llm] + (SEE_BONUS[llm] if cue == "SEE" else 0.0)
    return AUDIO_BASE[llm] + (HEAR_BONUS[llm] if cue == "HEAR" else 0.0)


def _row(modality, score, k, **extra):
    return {
        "encoder": ENCODER[modality],
        "modality": modality,
        "n_items": N_ITEMS[modality],
        "k": k,
        "score": score,
        "ci_low": score - 0.02,
        "ci_high": score + 0.02,
        "chance": 0.01,
        **extra,
    }


PAIRED = {  # (modality, comparison): (diff, ci_low, ci_high, p_holm, stars)
    ("vision", "SEE-NONE"): (0.05, 0.02, 0.08, 0.001, "***"),
    ("vision", "HEAR-NONE"): (0.0, -0.03, 0.03, 1.0, "n.s."),
    ("vision", "SEE-HEAR"): (0.05, 0.01, 0.09, 0.01, "**"),
    ("audio", "SEE-NONE"): (-0.01, -0.04, 0.02, 0.6, "n.s."),
    ("audio", "HEAR-NONE"): (0.04, 0.01, 0.07, 0.01, "**"),
    ("audio", "SEE-HEAR"): (-0.05, -0.08, -0.02, 0.002, "**"),
}


def make_run(
    outputs,
    name,
    modalities,
    *,
    llm=SMALL,
    cues=None,
    T=128,
    k=10,
    size_T=128,
    size_llms=(SMALL, MID, LARGE),
    size_templates=None,
):
    """A run folder as notebooks 02, 05, 06, 07 and 09 leave it, with the numbers above."""
    cues = dict(DEFAULT_CUES if cues is None else cues)
    run = RunPaths.of(name, outputs)
    gens = pd.DataFrame(
        [
            {
                "cue": c,
                "template": t,
                "id": f"i{i}",
                "llm": llm,
                "max_new_tokens": T,
                "do_sample": False,
                "enable_thinking": False,
                "n_gen_tokens": T,
            }
            for c, t in cues.items()
            for i in range(3)
        ]
    )
    save_table(gens, run.generations)
    align, size, curve, paired = [], [], [], []
    for m in modalities:
        for cue in cues:
            align.append(_row(m, OWN[m][cue], k, representation=f"{cue}/gen_mean", cue=cue, kind="generative"))
            align.append(
                _row(m, 0.5, k, representation=f"{cue}/prompt_last", cue=cue, kind="single-pass (last prompt token)")
            )
            for name_ in size_llms:
                size.append(
                    _row(
                        m,
                        size_score(m, name_, cue),
                        k,
                        representation=f"{name_}|{cue}",
                        llm=name_,
                        cue=cue,
                        n_params=N_PARAMS[name_],
                        T=size_T,
                        template=(size_templates or cues)[cue],
                    )
                )
            for t, rep, s in [
                (0, "prompt_last", 0.05),
                (0, "prompt_mean", 0.04),
                (8, "prefix", 0.10),
                (T, "gen_mean", OWN[m][cue]),
            ]:
                curve.append({"cue": cue, **_row(m, s, k, T=t, representation=rep, frac_shorter=0.0)})
        for (mod, comp), (d, lo, hi, p, stars) in PAIRED.items():
            if mod == m:
                c1, c2 = comp.split("-")
                paired.append(
                    {
                        **_row(m, 0.0, k),
                        "kind": "gen_mean",
                        "comparison": comp,
                        "cue_1": c1,
                        "cue_2": c2,
                        "diff": d,
                        "ci_low": lo,
                        "ci_high": hi,
                        "p_value": p / 2,
                        "p_holm": p,
                        "stars": stars,
                    }
                )
    run.results.mkdir(parents=True, exist_ok=True)
    for stem, rows in [
        ("alignment", align),
        ("model_size", size),
        ("length_curve", curve),
        ("paired_comparisons", paired),
    ]:
        pd.DataFrame(rows).assign(run=name).to_csv(run.results / f"{stem}.csv", index=False)
    return run


@pytest.fixture
def two_runs(tmp_path):
    make_run(tmp_path, "vis", ["vision"])
    make_run(tmp_path, "aud", ["audio"])
    return tmp_path


def _load(outputs, *names):
    return [crossrun.load_run(n, outputs) for n in names]


def _point(plane, source, llm, cue):
    row = plane[(plane["source"] == source) & (plane["llm"] == llm) & (plane["cue"] == cue)]
    assert len(row) == 1, (source, llm, cue)
    return round(float(row["vision_score"].iloc[0]), 6), round(float(row["audio_score"].iloc[0]), 6)


def test_plane_pairs_vision_run_with_audio_run(two_runs):
    runs = _load(two_runs, "vis", "aud")
    crossrun.check_compatible(runs)
    plane = crossrun.plane_table(runs)
    assert set(plane["vision_run"]) == {"vis"} and set(plane["audio_run"]) == {"aud"}
    assert set(plane["vision_encoder"]) == {"dinov2-base"} and set(plane["audio_encoder"]) == {"beats"}
    # 3 LLMs x 3 cues from 09, 3 cues from 05
    assert len(plane) == 9 + 3
    # hand-worked: vision = base (+ SEE bonus), audio = base (+ HEAR bonus)
    assert _point(plane, "model_size", LARGE, "SEE") == (0.35, 0.14)
    assert _point(plane, "model_size", LARGE, "HEAR") == (0.30, 0.18)
    assert _point(plane, "model_size", LARGE, "NONE") == (0.30, 0.14)
    assert _point(plane, "model_size", MID, "SEE") == (0.28, 0.12)
    assert _point(plane, "model_size", SMALL, "HEAR") == (0.20, 0.12)
    assert _point(plane, "model_size", SMALL, "NONE") == (0.20, 0.10)
    # 05's points: the run's own LLM at T = max_new_tokens, single-pass rows left out
    assert _point(plane, "alignment", SMALL, "SEE") == (0.26, 0.09)
    assert _point(plane, "alignment", SMALL, "HEAR") == (0.21, 0.15)
    own = plane[plane["source"] == "alignment"]
    assert (own["T"] == 128).all() and (own["n_params"] == 6e8).all()
    assert (
        (plane["vision_n_items"] == 1024).all() and (plane["audio_n_items"] == 900).all() and (plane["k"] == 10).all()
    )
    row = plane[(plane["source"] == "model_size") & (plane["llm"] == MID) & (plane["cue"] == "HEAR")].iloc[0]
    assert (round(row["audio_ci_low"], 6), round(row["audio_ci_high"], 6)) == (0.13, 0.17)


def test_shifts_effects_and_conclusions(two_runs):
    runs = _load(two_runs, "vis", "aud")
    plane = crossrun.plane_table(runs)
    shifts = crossrun.matched_shifts(plane)
    size = shifts[shifts["source"] == "model_size"].set_index("llm")
    assert size["see_dx"].round(6).to_dict() == {SMALL: 0.01, MID: 0.03, LARGE: 0.05}
    assert size["hear_dy"].round(6).to_dict() == {SMALL: 0.02, MID: 0.03, LARGE: 0.04}
    own = shifts[shifts["source"] == "alignment"].iloc[0]
    assert round(own["see_dx"], 6) == 0.06 and round(own["hear_dy"], 6) == 0.04  # 0.26 - 0.20, 0.15 - 0.11
    effects = crossrun.cue_effects(runs)
    assert list(zip(effects["run"], effects["comparison"])) == [
        ("vis", "SEE-NONE"),
        ("vis", "HEAR-NONE"),
        ("aud", "SEE-NONE"),
        ("aud", "HEAR-NONE"),
    ]
    assert list(effects["matched"]) == [True, False, False, True]
    lines = crossrun.conclusions(plane, effects)
    text = "\n".join(lines)
    assert "model_size: SEE lies right of NONE (higher vision alignment) for 3 of 3 LLM(s), HEAR above NONE" in text
    assert "for 3 of 3; mean shifts +0.0300 (x), +0.0300 (y)" in text
    assert "rank correlation of the SEE shift with parameters +1.00, of the HEAR shift +1.00" in text
    assert "alignment: SEE lies right of NONE (higher vision alignment) for 1 of 1" in text
    assert "SEE-NONE +0.0500 [+0.0200, +0.0800], Holm p 0.001 ***: SEE raises vision alignment" in text
    assert "HEAR-NONE +0.0400 [+0.0100, +0.0700], Holm p 0.01 **: HEAR raises audio alignment" in text
    assert len([ln for ln in lines if ln.startswith("07 ")]) == 2  # matched comparisons only


def test_opposite_numbers_give_opposite_conclusions(tmp_path):
    """The sentences follow the numbers: a run whose SEE effect is negative says so."""
    make_run(tmp_path, "vis", ["vision"])
    make_run(tmp_path, "aud", ["audio"])
    path = RunPaths.of("vis", tmp_path).results / "paired_comparisons.csv"
    df = pd.read_csv(path)
    sel = df["comparison"] == "SEE-NONE"
    df.loc[sel, ["diff", "ci_low", "ci_high"]] = [-0.05, -0.08, -0.02]
    df.to_csv(path, index=False)
    runs = _load(tmp_path, "vis", "aud")
    text = "\n".join(crossrun.conclusions(crossrun.plane_table(runs), crossrun.cue_effects(runs)))
    assert "SEE-NONE -0.0500 [-0.0800, -0.0200], Holm p 0.001 ***: SEE lowers vision alignment" in text


@pytest.mark.parametrize(
    "change, field, values",
    [
        (dict(llm="Qwen/Qwen3-8B"), "llm", ("'Qwen/Qwen3-0.6B'", "'Qwen/Qwen3-8B'")),
        (dict(cues={**DEFAULT_CUES, "SEE": "Picture {caption}."}), "cues", ("'Picture {caption}.'",)),
        (dict(T=64), "max_new_tokens", ("128", "64")),
        (dict(size_T=32), "size_T", ("128", "32")),
        (dict(k=5), "k", ("[10]", "[5]")),
        (dict(size_llms=(SMALL, MID)), "size_llms", ("'Qwen/Qwen3-4B'",)),
        (dict(size_templates={**DEFAULT_CUES, "HEAR": "Listen: {caption}."}), "size_cues", ("'Listen: {caption}.'",)),
    ],
)
def test_mismatched_runs_are_refused_naming_the_field(tmp_path, change, field, values):
    make_run(tmp_path, "vis", ["vision"])
    make_run(tmp_path, "aud", ["audio"], **change)
    runs = _load(tmp_path, "vis", "aud")
    with pytest.raises(crossrun.IncompatibleRuns) as err:
        crossrun.check_compatible(runs)
    msg = str(err.value)
    assert msg.startswith(f"runs 'vis', 'aud' differ in {field} (")
    assert "run 'vis' has" in msg and "run 'aud' has" in msg
    for v in values:
        assert v in msg, msg


def test_settings_read_from_generations_and_results(two_runs):
    (vis,) = _load(two_runs, "vis")
    s = vis.settings
    assert s["llm"] == SMALL and s["max_new_tokens"] == 128 and s["k"] == [10] and s["size_T"] == 128
    assert s["cues"] == DEFAULT_CUES and s["size_cues"] == DEFAULT_CUES
    assert s["size_llms"] == sorted([SMALL, MID, LARGE]) and s["do_sample"] is False and s["enable_thinking"] is False
    table = crossrun.settings_table(_load(two_runs, "vis", "aud"))
    assert list(table.columns) == ["setting", "vis", "aud"] and list(table["setting"]) == list(crossrun.SETTINGS)


def test_a_setting_one_run_did_not_record_is_not_compared(tmp_path):
    make_run(tmp_path, "vis", ["vision"])
    run = make_run(tmp_path, "aud", ["audio"], size_T=32)
    (run.results / "model_size.csv").unlink()  # 09 never ran for aud: size_T unknown there
    runs = _load(tmp_path, "vis", "aud")
    assert runs[1].settings["size_T"] is None and runs[1].table("model_size") is None
    crossrun.check_compatible(runs)
    plane = crossrun.plane_table(runs)
    assert set(plane["source"]) == {"alignment"} and len(plane) == 3


def test_single_run_with_both_modalities_is_its_own_plane(tmp_path):
    make_run(tmp_path, "default", ["vision", "audio"])
    names = crossrun.run_names("default", None)
    assert names == ["default"]
    runs = _load(tmp_path, *names)
    plane = crossrun.plane_table(runs)
    assert set(plane["vision_run"]) == set(plane["audio_run"]) == {"default"}
    assert _point(plane, "model_size", MID, "HEAR") == (0.25, 0.15)
    assert _point(plane, "alignment", SMALL, "NONE") == (0.20, 0.11)
    assert crossrun.missing_axes(runs) == {}


def test_single_modality_run_names_the_missing_axis_and_profile(tmp_path):
    make_run(tmp_path, "paper", ["vision"])
    runs = _load(tmp_path, "paper")
    assert crossrun.plane_table(runs).empty
    missing = crossrun.missing_axes(runs)
    assert list(missing) == ["audio"]
    assert missing["audio"].startswith("no audio axis (y): run(s) paper hold no audio encoder results")
    assert "paper-audiocaps or paper-clotho" in missing["audio"]
    assert "cross_runs=[paper, paper-audiocaps]" in missing["audio"]
    make_run(tmp_path, "paper-clotho", ["audio"])
    assert (
        "provides it: pass cross_runs=[paper-clotho, paper]"
        in crossrun.missing_axes(_load(tmp_path, "paper-clotho"))["vision"]
    )


def test_run_names_and_missing_runs(tmp_path):
    assert crossrun.run_names("x", ["a", "b"]) == ["a", "b"] and crossrun.run_names("x", "a") == ["a"]
    with pytest.raises(ValueError, match="names a run twice"):
        crossrun.run_names("x", ["a", "a"])
    with pytest.raises(FileNotFoundError, match="run 02_generation for run 'nope'"):
        crossrun.load_run("nope", tmp_path)


def _executed_text(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{out.get('ename')}: {out.get('evalue')}"
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout")


@pytest.mark.functional
def test_notebook_11_combines_constructed_runs(two_runs):
    nb11 = [p for p in runner.numbered_notebooks() if p.name.startswith("11_")]
    assert [p.name for p in nb11] == ["11_paper_figures.ipynb"]
    assert runner.notebook_parameters(nb11[0]) == {"run_name", "cross_runs"}
    (executed,) = runner.run_notebooks(
        {"run_name": "figs", "cross_runs": ["vis", "aud"]}, nb11, two_runs, log_output=False
    )
    text = _executed_text(executed)
    assert "combining ['vis', 'aud']" in text and "12 plane points, 1 (vision, audio) pair(s)" in text
    assert "SEE raises vision alignment" in text and "HEAR raises audio alignment" in text
    results = two_runs / "results" / "figs"
    plane = pd.read_csv(results / "cross_plane.csv")
    assert len(json.loads((results / "cross_plane.json").read_text())) == len(plane) == 12
    assert _point(plane, "model_size", LARGE, "SEE") == (0.35, 0.14)
    assert _point(plane, "alignment", SMALL, "HEAR") == (0.21, 0.15)
    effects = pd.read_csv(results / "cross_effects.csv")
    assert len(effects) == 4 and effects["matched"].sum() == 2
    curves = pd.read_csv(results / "cross_length_curve.csv")
    assert len(curves) == 2 * 3 * 4 and set(curves["run"]) == {"vis", "aud"}
    figures = two_runs / "figures" / "figs"
    for stem in (
        "11_plane_vis-dinov2-base_vs_aud-beats",
        "11_model_size",
        "11_length_vision",
        "11_length_audio",
        "11_cue_effects",
    ):
        for ext in ("png", "pdf"):
            assert (figures / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext}"


@pytest.mark.functional
def test_notebook_11_on_a_single_modality_run_draws_what_it_can(tmp_path):
    make_run(tmp_path, "paper", ["vision"])
    nb11 = [p for p in runner.numbered_notebooks() if p.name.startswith("11_")]
    (executed,) = runner.run_notebooks({"run_name": "paper"}, nb11, tmp_path, log_output=False)
    text = _executed_text(executed)
    assert "no audio axis (y): run(s) paper hold no audio encoder results" in text
    assert "paper-audiocaps or paper-clotho" in text and "0 plane points, 0 (vision, audio) pair(s)" in text
    assert "no audio length curves (06) in these runs" in text
    figures = tmp_path / "figures" / "paper"
    assert not list(figures.glob("11_plane_*"))
    for stem in ("11_model_size", "11_length_vision", "11_cue_effects"):
        assert (figures / f"{stem}.png").stat().st_size > 1000, stem


@pytest.mark.functional
def test_notebook_11_refuses_incompatible_runs(tmp_path):
    make_run(tmp_path, "vis", ["vision"])
    make_run(tmp_path, "aud", ["audio"], T=64)
    nb11 = [p for p in runner.numbered_notebooks() if p.name.startswith("11_")]
    with pytest.raises(runner.NotebookFailed, match=r"IncompatibleRuns: runs 'vis', 'aud' differ in max_new_tokens"):
        runner.run_notebooks({"run_name": "figs", "cross_runs": ["vis", "aud"]}, nb11, tmp_path, log_output=False)


def test_conclusions_without_a_plane_still_report_the_effects(tmp_path):
    make_run(tmp_path, "paper", ["vision"])
    runs = _load(tmp_path, "paper")
    lines = crossrun.conclusions(crossrun.plane_table(runs), crossrun.cue_effects(runs))
    assert len(lines) == 1 and "SEE-NONE +0.0500 [+0.0200, +0.0800]" in lines[0]
    assert crossrun.conclusions(crossrun.plane_table(runs), pd.DataFrame()) == [
        "nothing to conclude: no plane points and no paired comparisons in these runs"
    ]
