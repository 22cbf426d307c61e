"""Every figure stands alone: its setting in a footer, plain names, legends that explain, no layout warnings.

The tables are small hand-made stand-ins with the columns the notebooks pass (05-09, 11); the
setting comes from a run folder written here (manifest, generations, a results table), so the
footer's content is checked against values typed into this file, not derived from the code.
"""

from __future__ import annotations

import functools
import io
import itertools
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers.core.settings import AlignmentSettings  # noqa: E402
from helpers.data.artifacts import RunPaths, RunSetting  # noqa: E402
from helpers.report import plots  # noqa: E402

ENCODERS = [("efficientnet-lite2", "vision", 300), ("aisfx", "audio", 101), ("whisper-base", "audio", 101)]
CUES = ["SEE", "HEAR", "NONE"]
KINDS = ["generative", "single-pass (last prompt token)", "single-pass (prompt mean)"]
SETTING = "tuxpaint, 300 items (101 with a sound) · LLM smollm2-135m-instruct, T = 128, greedy · mutual k-NN, k = 10"


# ----------------------------------------------------------------------------- the setting, from a run's files


def _write_run(tmp_path, with_results: bool = False) -> RunPaths:
    run = RunPaths.of("myrun", tmp_path)
    run.run_dir.mkdir(parents=True)
    manifest = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(7)],
            "caption": ["a cat"] * 7,
            "image_path": ["/x.png"] * 7,
            "audio_path": ["/x.wav", None, "/y.wav", None, None, "/z.wav", None],
            "source": ["tuxpaint"] * 7,
        }
    )
    manifest.to_parquet(run.manifest)
    gens = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(7)] * 2,
            "cue": ["SEE"] * 7 + ["HEAR"] * 7,
            "llm": ["smollm2-135m-instruct"] * 14,
            "max_new_tokens": [128] * 14,
            "do_sample": [False] * 14,
        }
    )
    gens.to_parquet(run.generations)
    if with_results:
        run.results.mkdir(parents=True)
        pd.DataFrame({"encoder": ["dinov2-base", "beats"], "modality": ["vision", "audio"], "k": [5, 5]}).to_csv(
            run.results / "alignment.csv", index=False
        )
    return run


def test_setting_names_dataset_items_sounds_llm_T_k_and_encoders(tmp_path):
    run = _write_run(tmp_path)
    feats = {"efficientnet-lite2": ("vision", ["i0"], np.zeros((1, 2))), "aisfx": ("audio", ["i0"], np.zeros((1, 2)))}
    line = run.setting(AlignmentSettings(k=7), feats).line()
    for part in (
        "tuxpaint",
        "7 items",
        "3 with a sound",
        "LLM smollm2-135m-instruct",
        "T = 128, greedy",
        "k = 7",
        "efficientnet-lite2 (vision)",
        "aisfx (audio)",
        "run myrun",
    ):
        assert part in line, (part, line)
    assert "\n" not in line


def test_setting_leaves_out_sounds_without_an_audio_encoder_and_k_without_settings(tmp_path):
    run = _write_run(tmp_path)
    line = run.setting(encoders={"efficientnet-lite2": "vision"}).line()
    assert "7 items" in line and "with a sound" not in line and "k =" not in line
    assert run.setting().line().startswith("tuxpaint, 7 items · LLM smollm2-135m-instruct, T = 128")


def test_setting_reads_k_and_encoders_from_the_results_and_takes_other_llms_and_T(tmp_path):
    run = _write_run(tmp_path, with_results=True)
    assert run.setting().k is None and run.setting().encoders == ()  # a notebook still running: not from old results
    s = run.setting(results=True)
    assert s.k == 5 and s.encoders == (("dinov2-base", "vision"), ("beats", "audio"))
    line = run.setting(AlignmentSettings(k=10), llm=["smollm2-135m-instruct", "gemma-3-270m"], T=32).line()
    assert "LLM smollm2-135m-instruct, gemma-3-270m, T = 32" in line and "k = 10" in line and "T = 128" not in line


def test_setting_of_a_subset_counts_the_subsets_items_and_sounds(tmp_path):
    run = _write_run(tmp_path)
    subset = pd.read_parquet(run.manifest).iloc[:3]  # i0 (sound), i1, i2 (sound)
    line = run.setting(encoders={"aisfx": "audio"}, items=subset).line()
    assert line.startswith("tuxpaint, 3 items (2 with a sound)") and "7 items" not in line


def test_setting_of_a_run_with_no_files_says_only_the_run(tmp_path):
    assert RunPaths.of("empty", tmp_path).setting().line() == "run empty"
    assert (
        RunSetting(run="r", n_items=3, n_sound=1, encoders=(("a", "audio"),)).line()
        == "3 items (1 with a sound) · encoders a (audio) · run r"
    )


# ----------------------------------------------------------------------------- stand-in tables


def _encoders(n: int) -> list[tuple[str, str, int]]:
    return ENCODERS[:n] if n > 1 else ENCODERS[:1]


def alignment_table(n_enc: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for (enc, mod, n), kind, cue in itertools.product(_encoders(n_enc), KINDS, CUES):
        s = 0.1 + 0.05 * rng.random()
        rows.append(
            {
                "encoder": enc,
                "modality": mod,
                "n_items": n,
                "kind": kind,
                "cue": cue,
                "score": s,
                "ci_low": s - 0.01,
                "ci_high": s + 0.01,
                "chance": 10 / (n - 1),
                "k": 10,
            }
        )
    return pd.DataFrame(rows)


def length_table(n_enc: int) -> pd.DataFrame:
    rows = []
    points = [
        (0, "prompt_last"),
        (0, "prompt_mean"),
        (8, "prefix"),
        (16, "prefix"),
        (32, "prefix"),
        (64, "prefix"),
        (128, "gen_mean"),
    ]
    for (enc, mod, n), cue, (T, rep) in itertools.product(_encoders(n_enc), CUES, points):
        s = 0.1 + 0.0003 * T
        rows.append(
            {
                "encoder": enc,
                "modality": mod,
                "n_items": n,
                "cue": cue,
                "T": T,
                "representation": rep,
                "score": s,
                "ci_low": s - 0.01,
                "ci_high": s + 0.01,
                "chance": 10 / (n - 1),
            }
        )
    return pd.DataFrame(rows)


def layer_table(n_enc: int) -> pd.DataFrame:
    rows = [
        {
            "encoder": enc,
            "modality": mod,
            "n_items": n,
            "cue": cue,
            "kind": "gen_mean",
            "layer": layer,
            "score": 0.1 + 0.001 * layer,
            "layer_mean_score": 0.12,
            "chance": 10 / (n - 1),
        }
        for (enc, mod, n), cue, layer in itertools.product(_encoders(n_enc), CUES, range(31))
    ]
    return pd.DataFrame(rows)


def paired_table(n_enc: int) -> pd.DataFrame:
    rows = []
    for (enc, mod, n), (comp, p, star) in itertools.product(
        _encoders(n_enc), [("SEE-NONE", 0.0004, "***"), ("HEAR-NONE", 0.2, "n.s."), ("SEE-HEAR", 0.03, "*")]
    ):
        rows.append(
            {
                "run": "r",
                "encoder": enc,
                "modality": mod,
                "n_items": n,
                "comparison": comp,
                "cue_1": comp.split("-")[0],
                "diff": 0.01,
                "ci_low": -0.005,
                "ci_high": 0.025,
                "p_holm": p,
                "stars": star,
            }
        )
    return pd.DataFrame(rows)


def transfer_table(n_enc: int) -> pd.DataFrame:
    """12's cue effects: two LLMs, each reading its own and the other's texts, both cues, every encoder."""
    rows, llms = [], ["smollm2-135m-instruct", "gemma-3-270m"]
    for i, ((enc, mod, n), writer, reader, cue) in enumerate(
        itertools.product(_encoders(n_enc), llms, llms, ["SEE", "HEAR"])
    ):
        d = 0.02 * np.sin(i)
        rows.append(
            {
                "writer": writer,
                "reader": reader,
                "reading": f"{reader} reads {writer}",
                "cue": cue,
                "comparison": f"{cue}-NONE",
                "encoder": enc,
                "modality": mod,
                "n_items": n,
                "matched": (cue == "SEE") == (mod == "vision"),
                "diff": d,
                "ci_low": d - 0.015,
                "ci_high": d + 0.015,
                "p_holm": 0.01 if i % 3 == 0 else 0.5,
                "stars": "*" if i % 3 == 0 else "n.s.",
            }
        )
    return pd.DataFrame(rows)


def variant_table(n_enc: int) -> pd.DataFrame:
    """13's cue effects: the paper's prompts and four variants, both cues, every encoder."""
    rows = []
    variants = [
        "as in the paper",
        "no final full stop",
        "caption capitalised",
        '"Imagine that" for "Imagine:"',
        "empty system prompt",
    ]
    for i, ((enc, mod, n), v, cue) in enumerate(itertools.product(_encoders(n_enc), variants, ["SEE", "HEAR"])):
        d = 0.02 * np.cos(i)
        rows.append(
            {
                "variant": v,
                "cue": cue,
                "comparison": f"{cue}-NONE",
                "encoder": enc,
                "modality": mod,
                "n_items": n,
                "matched": (cue == "SEE") == (mod == "vision"),
                "diff": d,
                "ci_low": d - 0.015,
                "ci_high": d + 0.015,
                "p_holm": 0.01 if i % 4 == 0 else 0.5,
            }
        )
    return pd.DataFrame(rows)


def search_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """14's search-half scores of thirteen cues and the winner against the paper's three on the held-out half."""
    cues = [
        "PICTURE",
        "SEE",
        "NONE",
        "HEAR",
        "VISUALISE",
        "LOOKS_LIKE",
        "EYES_CLOSED",
        "PAINTER",
        "LISTEN",
        "SOUNDS_LIKE",
        "SOUND_ENGINEER",
        "SCENE",
        "DESCRIBE",
    ]
    search = pd.DataFrame(
        {"cue": cues, "score": np.linspace(0.2, 0.12, len(cues)), "rank": np.arange(1, len(cues) + 1)}
    )
    search["ci_low"], search["ci_high"] = search["score"] - 0.02, search["score"] + 0.02
    held = pd.DataFrame(
        {
            "condition": "PICTURE",
            "baseline": ["SEE", "HEAR", "NONE"],
            "encoder": "efficientnet-lite2",
            "diff": [0.01, 0.03, 0.02],
            "p_holm": [0.5, 0.01, 0.2],
        }
    )
    held["ci_low"], held["ci_high"] = held["diff"] - 0.015, held["diff"] + 0.015
    return search, held


def null_table(n_enc: int) -> pd.DataFrame:
    rows = [
        {"kind": kind, "cue": cue, "encoder": enc, "calibrated": 0.05 + 0.01 * i, "stars": "n.s." if i % 2 else "***"}
        for i, ((enc, _, _), kind, cue) in enumerate(itertools.product(_encoders(n_enc), KINDS, CUES))
    ]
    return pd.DataFrame(rows)


def sensory_table(n_enc: int) -> pd.DataFrame:
    ablations = [
        "+5 random words",
        "caption → 5 random words",
        "sensory words removed",
        "random words removed (control)",
    ]
    rows = [
        {"cue": cue, "ablation": a, "encoder": enc, "diff": -0.02, "ci_low": -0.04, "ci_high": 0.0}
        for cue, (enc, _, _), a in itertools.product(["SEE", "HEAR"], _encoders(n_enc), ablations)
    ]
    return pd.DataFrame(rows)


def size_table(n_enc: int) -> pd.DataFrame:
    rows = []
    for (enc, mod, n), (llm, params), cue in itertools.product(
        _encoders(max(2, n_enc)), [("smollm2-135m-instruct", 135e6), ("gemma-3-270m", 270e6)], CUES
    ):
        s = 0.1 + params / 1e10
        rows.append(
            {
                "run": "r",
                "encoder": enc,
                "modality": mod,
                "llm": llm,
                "n_params": params,
                "cue": cue,
                "score": s,
                "ci_low": s - 0.01,
                "ci_high": s + 0.01,
                "chance": 10 / (n - 1),
                "T": 32,
            }
        )
    return pd.DataFrame(rows)


def plane_table() -> pd.DataFrame:
    rows = []
    for i, (source, (llm, params), cue) in enumerate(
        itertools.product(["model_size", "alignment"], [("smollm2", 135e6), ("gemma", 270e6)], CUES)
    ):
        if source == "alignment" and llm != "smollm2":
            continue
        v, a = 0.1 + 0.004 * i, 0.15 - 0.003 * i
        rows.append(
            {
                "source": source,
                "llm": llm,
                "n_params": params,
                "cue": cue,
                "T": 128,
                "vision_score": v,
                "vision_ci_low": v - 0.01,
                "vision_ci_high": v + 0.01,
                "audio_score": a,
                "audio_ci_low": a - 0.02,
                "audio_ci_high": a + 0.02,
                "vision_encoder": "efficientnet-lite2",
                "vision_run": "default",
                "audio_encoder": "aisfx",
                "audio_run": "default",
            }
        )
    return pd.DataFrame(rows)


def layer_norms() -> pd.DataFrame:
    norms = [1.0] + [5.0 * 1.3**i for i in range(1, 30)] + [2.0]  # a final-norm step down at the last index
    return pd.DataFrame([{"cue": cue, "layer": i, "norm": v} for cue in CUES for i, v in enumerate(norms)])


@functools.cache
def figures(n_enc: int) -> dict[str, tuple[plt.Figure, object]]:
    """Every figure the notebooks draw, for ``n_enc`` encoders (the scatters need one of each modality),
    each drawn once, with the renderer that drew it; a warning while making or drawing one is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drawn = {}
        for name, fig in _make(n_enc).items():
            drawn[name] = (fig, _draw(fig))
            plt.close(fig)  # still inspected; pyplot lets go of it
    return drawn


def _make(n_enc: int) -> dict[str, plt.Figure]:
    size = size_table(n_enc)
    return {
        "layer_norm_curves": plots.layer_norm_curves(layer_norms(), setting=SETTING),
        "alignment_bars": plots.alignment_bars(alignment_table(n_enc), setting=SETTING),
        "alignment_scatter": plots.alignment_scatter(
            alignment_table(2), "efficientnet-lite2", "aisfx", setting=SETTING
        ),
        "length_curves": plots.length_curves(length_table(n_enc), setting=SETTING),
        "layerwise_curves": plots.layerwise_curves(layer_table(n_enc), setting=SETTING),
        "paired_differences": plots.paired_differences(paired_table(n_enc), setting=SETTING),
        "calibrated_scores": plots.calibrated_scores(null_table(n_enc), setting=SETTING),
        "sensory_word_deltas": plots.sensory_word_deltas(sensory_table(n_enc), setting=SETTING),
        "model_size_scatter": plots.model_size_scatter(size, "efficientnet-lite2", "aisfx", setting=SETTING),
        "paper_plane": plots.paper_plane(plane_table(), setting=SETTING),
        "size_curves": plots.size_curves(
            size[size["encoder"].isin([e for e, _, _ in _encoders(n_enc)])], setting=SETTING
        ),
        "cross_length_curves": plots.cross_length_curves(length_table(n_enc).assign(run="default"), setting=SETTING),
        "cue_effects_forest": plots.cue_effects_forest(
            paired_table(n_enc)[lambda d: d["comparison"] != "SEE-HEAR"], setting=SETTING
        ),
        "transfer_effects": plots.transfer_effects(transfer_table(n_enc), setting=SETTING),
        "variant_effects": plots.variant_effects(variant_table(n_enc), setting=SETTING),
        "cue_search": plots.cue_search(*search_tables(), "efficientnet-lite2", setting=SETTING),
        "image_gallery": plots.image_gallery(
            [np.ones((8, 8, 3))] * 3, ["a cat", "a dog", "a very long caption of a bell"], setting=SETTING
        ),
    }


def _draw(fig: plt.Figure):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50, bbox_inches="tight")
    return fig.canvas.get_renderer()


# ----------------------------------------------------------------------------- the figures


@pytest.fixture(scope="module", autouse=True)
def _close_figures():
    yield
    figures.cache_clear()
    plt.close("all")


@pytest.mark.parametrize("n_enc", [1, 3])
def test_every_figure_draws_without_a_warning_and_carries_the_setting(n_enc):
    for name, (fig, renderer) in figures(n_enc).items():  # made and drawn with warnings as errors
        drawn = plots.footer_text(fig)
        assert all(part in drawn for part in SETTING.split(" · ")), (name, drawn)  # wrapped, but whole
        footer = next(t for t in fig.texts if t.get_gid() == plots.FOOTER_GID)
        tight, box = (
            fig.get_tightbbox(renderer),
            footer.get_window_extent(renderer).transformed(fig.dpi_scale_trans.inverted()),
        )
        assert tight.x0 <= box.x0 + 1e-6 and box.x1 <= tight.x1 + 1e-6 and tight.y0 <= box.y0 + 1e-6, (
            f"{name}: footer cut off"
        )
        # the footer is wrapped to the figure: it does not widen the saved figure by more than a margin
        assert box.width <= fig.get_figwidth() + 0.2, (
            f"{name}: footer {box.width:.1f} in wide on a {fig.get_figwidth():.1f} in figure"
        )


def test_a_figure_without_a_setting_has_no_footer():
    fig = plots.alignment_bars(alignment_table(1))
    assert plots.footer_text(fig) == "" and not [t for t in fig.texts if t.get_gid() == plots.FOOTER_GID]
    plt.close(fig)


def _no_overlap(boxes, what):
    for (a, ba), (b, bb) in itertools.combinations(boxes, 2):
        assert not ba.overlaps(bb), f"{what}: {a!r} overlaps {b!r}"


@pytest.mark.parametrize("n_enc", [1, 3])
def test_no_label_collides_and_one_encoder_panels_are_readable(n_enc):
    for name, (fig, renderer) in figures(n_enc).items():
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
        for ax in axes:
            ticks = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.get_xticklabels() if t.get_text()]
            _no_overlap(ticks, f"{name} x tick labels")
            ticks = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.get_yticklabels() if t.get_text()]
            _no_overlap(ticks, f"{name} y tick labels")
            texts = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_text().strip()]
            _no_overlap(texts, f"{name} labels in the plot")
            legend = ax.get_legend()
            if legend is not None:  # every legend sits outside every panel
                for other in axes:
                    assert not legend.get_window_extent(renderer).overlaps(other.get_window_extent(renderer)), (
                        f"{name}: legend over a panel"
                    )
            if name != "image_gallery":
                width_in = ax.get_window_extent(renderer).width / fig.dpi
                assert width_in >= 2.3, f"{name}: a panel only {width_in:.1f} in wide"
                title = ax.title.get_window_extent(renderer)
                if ax.title.get_text():
                    assert title.width <= fig.bbox.width + 1, f"{name}: title wider than the figure"
        titles = [(ax.get_title(), ax.title.get_window_extent(renderer)) for ax in axes if ax.get_title()]
        _no_overlap(titles, f"{name} panel titles")
        xlabels = [(ax.get_xlabel(), ax.xaxis.label.get_window_extent(renderer)) for ax in axes if ax.get_xlabel()]
        _no_overlap(xlabels, f"{name} axis labels")  # a long x label under narrow panels runs into its neighbour


@pytest.mark.parametrize("n_enc", [1, 3])
def test_headline_bars_hatch_each_single_pass_kind_beside_solid_generative_bars(n_enc):
    fig = plots.alignment_bars(alignment_table(n_enc))
    bars = [p for ax in fig.axes for p in ax.patches if p.get_height() > 0]
    assert len(bars) == n_enc * len(KINDS) * len(CUES) if n_enc > 1 else len(bars) == len(KINDS) * len(CUES)
    by_hatch: dict[str, int] = {}
    for bar in bars:
        by_hatch[bar.get_hatch() or ""] = by_hatch.get(bar.get_hatch() or "", 0) + 1
    per_kind = len(bars) // len(KINDS)
    assert by_hatch.get("", 0) == per_kind  # generative: solid
    hatched = {h: n for h, n in by_hatch.items() if h}
    assert len(hatched) == 2 and set(hatched.values()) == {per_kind}  # one distinct hatch per single-pass kind
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert any("last prompt token" in t for t in legend) and any("prompt mean" in t for t in legend)
    assert any("chance" in t for t in legend) and any("95% CI" in t for t in legend)
    ticks = [t.get_text().replace("\n", " ") for ax in fig.axes for t in ax.get_xticklabels()]
    assert "generative" in ticks and not {"gen_mean", "prompt_last", "prompt_mean"} & set(ticks)
    plt.close("all")


def test_headline_bars_without_kinds_draw_the_generative_bars_solid():
    fig = plots.alignment_bars(alignment_table(3).query("kind == 'generative'").drop(columns="kind"))
    assert all(not p.get_hatch() for ax in fig.axes for p in ax.patches)
    plt.close("all")


def test_layer_norms_are_on_a_log_axis_with_the_final_norm_step_annotated():
    fig = plots.layer_norm_curves(layer_norms())
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    notes = [t for t in ax.texts if "final norm" in t.get_text()]
    assert len(notes) == 1 and notes[0].xy[0] == 30  # points at the last index
    plt.close("all")


def _legend_text(fig: plt.Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts())


def test_legends_explain_bands_lines_and_stars():
    figs = {name: fig for name, (fig, _) in figures(3).items()}
    for name in ("alignment_bars", "length_curves", "layerwise_curves", "size_curves", "cross_length_curves"):
        assert "chance" in _legend_text(figs[name]), name
    for name in ("length_curves", "cross_length_curves"):
        assert "shaded" in _legend_text(figs[name]) and "95% CI" in _legend_text(figs[name])
        assert "last prompt token" in _legend_text(figs[name]) and "prompt mean" in _legend_text(figs[name])
    assert "mean over layers" in _legend_text(figs["layerwise_curves"])
    for name in ("paired_differences", "calibrated_scores", "cue_effects_forest"):
        text = _legend_text(figs[name])
        for threshold in ("*** p < 0.001", "** p < 0.01", "* p < 0.05", "n.s."):
            assert threshold in text, (name, threshold)


# ----------------------------------------------------------------------------- the notebooks pass it


#: notebooks whose every figure carries the run's setting (01's gallery and 10's playground bars show items, not results)
SETTING_NOTEBOOKS = ("03", "05", "06", "07", "08", "09", "11", "12", "13", "14")


def test_every_figure_the_analysis_notebooks_draw_is_given_the_setting():
    import ast

    import nbformat

    from helpers.run.runner import numbered_notebooks

    missing, seen = [], 0
    for path in numbered_notebooks():
        if path.name[:2] not in SETTING_NOTEBOOKS:
            continue
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(cell.source)):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "plots"
                    and node.func.attr not in ("save_figure", "set_style", "cue_colors")
                ):
                    seen += 1
                    if not any(kw.arg == "setting" for kw in node.keywords):
                        missing.append(f"{path.name} cell {i}: plots.{node.func.attr}")
    assert seen >= 13, f"only {seen} figure calls found"
    assert not missing, f"figures drawn without the run's setting: {missing}"
