"""The playground (helpers.report.widgets and the pieces it composes: views, neighbours, playground, runner) and the widget handlers, over a tiny run on disk."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from playground_run import MAX_NEW_TOKENS, make_run

from helpers.analyses import neighbours, playground as PG, tables
from helpers.core.settings import AlignmentSettings as S, LMSettings
from helpers.data.artifacts import load_table
from helpers.lm import Decoding
from helpers.metrics import alignment
from helpers.report import views, widgets as Wd
from helpers.run import runner


class Lex:
    """A stand-in for helpers.data.lexicon.Lexicon: a set of lower-case words."""

    def __init__(self, words):
        self.words = set(words)

    def matches(self, token: str) -> bool:
        return token.lower() in self.words


LEX = {"visual": Lex({"red", "look", "see", "bright"}), "auditory": Lex({"sound", "hello", "bright-ish", "loud"})}
COLOURS = {"visual": "#0000ff", "auditory": "#ff0000"}


# --- pure functions ---------------------------------------------------------------


def test_highlight_marks_each_modality_in_its_colour_and_escapes():
    text = "A red <cat> makes a LOUD sound; look!"
    out = views.highlight_html(text, LEX, COLOURS)
    marks = re.findall(r'<mark class="([^"]+)"[^>]*background: ([^;]+);[^>]*>([^<]+)</mark>', out)
    assert marks == [
        ("pg-visual", "#0000ff", "red"),
        ("pg-auditory", "#ff0000", "LOUD"),
        ("pg-auditory", "#ff0000", "sound"),
        ("pg-visual", "#0000ff", "look"),
    ]
    assert "&lt;cat&gt;" in out and "<cat>" not in out
    # the text survives: strip the tags, unescape, and it is the input again
    import html

    assert html.unescape(re.sub(r"<[^>]+>", "", out)) == text


def test_highlight_word_in_both_lexicons_gets_both_colours():
    both = {"visual": Lex({"bright"}), "auditory": Lex({"bright"})}
    out = views.highlight_html("so bright", both, COLOURS)
    assert 'class="pg-visual pg-auditory"' in out and "#0000ff" in out and "#ff0000" in out
    assert views.sensory_spans("so bright", both) == [(3, 9, ["visual", "auditory"])]
    with pytest.raises(ValueError, match="no highlight colour for lexicon"):
        views.highlight_html("x", {"smell": Lex({"x"})}, COLOURS)


def test_highlight_with_the_shipped_lexicons():
    out = views.highlight_html("The bright red lamp glows near a loud bell.", views.default_lexicons())
    visual = re.findall(r'class="pg-visual"[^>]*>([^<]+)<', out)
    auditory = re.findall(r'class="pg-auditory"[^>]*>([^<]+)<', out)
    assert visual == ["bright", "red", "glows"] and auditory == ["loud"]
    assert (
        f"background: {views.HIGHLIGHT_COLOURS['visual']}" in out
        and f"background: {views.HIGHLIGHT_COLOURS['auditory']}" in out
    )


def test_highlight_keeps_first_of_overlapping_spans(monkeypatch):
    def find(text, lexicon):  # multi-word entries may overlap single words of the other lexicon
        return [(0, 9, "red apple")] if lexicon is LEX["visual"] else [(4, 9, "apple")]

    monkeypatch.setattr(views, "find_words", find)
    assert views.sensory_spans("red apple pie", LEX) == [(0, 9, ["visual"])]


def test_item_neighbours_agree_with_mutual_knn():
    rng = np.random.default_rng(0)
    ids = [f"i{j}" for j in range(20)]
    llm = rng.normal(size=(20, 5))
    vis = llm + 0.3 * rng.normal(size=(20, 5))  # close to the LLM space: many shared neighbours
    aud_ids = ids[::2]
    aud = rng.normal(size=(10, 4))
    feats = {"v": ("vision", ids, vis), "a": ("audio", aud_ids, aud)}
    table = neighbours.item_neighbours("i4", (ids, llm), feats, settings=S(k=3, quantile=0.95))
    assert set(table["encoder"]) == {"v", "a"} and len(table) == 2 * 2 * 3
    assert "i4" not in set(table["id"])  # an item is not its own neighbour
    assert set(table[table["encoder"] == "a"]["id"]) <= set(aud_ids)  # audio neighbours among items with a sound
    per_item_v = alignment.mutual_knn_per_item(llm, vis, k=3, q=0.95)[4]
    ia, ib = alignment.match_rows(ids, aud_ids)
    per_item_a = alignment.mutual_knn_per_item(llm[ia], aud[ib], k=3, q=0.95)[2]
    overlap = neighbours.neighbour_overlap(table).set_index("encoder")["mutual_knn"]
    assert overlap["v"] == pytest.approx(per_item_v) and overlap["a"] == pytest.approx(per_item_a)
    sims = table[(table["encoder"] == "v") & (table["space"] == "LLM")]["similarity"].to_numpy()
    assert (np.diff(sims) <= 1e-12).all()  # nearest first
    # an item without a sound has no audio rows; an unknown item is a clear error
    assert set(neighbours.item_neighbours("i5", (ids, llm), feats, settings=S(k=3))["encoder"]) == {"v"}
    with pytest.raises(KeyError, match="'nope' has no LLM representation"):
        neighbours.item_neighbours("nope", (ids, llm), feats, settings=S(k=3))


def test_save_template_merges_and_round_trips_through_the_runner(tmp_path):
    path = tmp_path / "params" / "tiny.yaml"
    base = {"SEE": "See {caption}.", "NONE": "{caption}."}
    runner.save_template_to_params(path, "SMELL", "Imagine the smell of {caption}.", base)
    runner.save_template_to_params(path, "TOUCH", "Imagine touching {caption}.", {"IGNORED": "{caption}"})
    params = runner.load_profile("tiny", params_file=path)
    assert params["cues"] == {
        **base,
        "SMELL": "Imagine the smell of {caption}.",
        "TOUCH": "Imagine touching {caption}.",
    }
    path.write_text(path.read_text() + "k: 4\n")
    runner.save_template_to_params(path, "SMELL", "Smell {caption}!", base)  # replaces, keeps other keys
    saved = yaml.safe_load(path.read_text())
    assert saved["k"] == 4 and saved["cues"]["SMELL"] == "Smell {caption}!" and list(saved["cues"])[-1] == "TOUCH"
    with pytest.raises(ValueError, match="exactly once"):
        runner.save_template_to_params(path, "BAD", "no slot", base)
    with pytest.raises(ValueError, match="cue name"):
        runner.save_template_to_params(path, "two words", "{caption}", base)
    cmd = runner.rerun_command(path, "tiny")
    assert cmd == f'make reproduce PROFILE=tiny PARAMS="--params-file {path.resolve()}"'


# --- the widgets over a tiny run --------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, model_dirs):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PERCEIVE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield make_run(tmp_path_factory.mktemp("outputs"), model_dirs["qwen3"])


@pytest.fixture
def playground(tiny_run, model_dirs):
    return Wd.Playground(
        tiny_run,
        lm_settings=LMSettings(llm=str(model_dirs["qwen3"]), gen_batch_size=5),
        decoding=Decoding(max_new_tokens=MAX_NEW_TOKENS),
        vision_encoders=["toyvision"],
        audio_encoders=["toyaudio", "absent"],
        playground_items=12,
        lexicons=LEX,
        colours=COLOURS,
        profile="tiny",
        settings=S(k=3),
    )


def test_playground_shows_item_media_and_neighbours(playground, tiny_run):
    pg = playground
    assert pg.item.value == "toy/00" and 'src="data:image/png;base64,' in pg.media.value
    assert "<audio" in pg.media.value and "autoplay" in pg.media.value  # item 0 has a sound
    table = pg.last_neighbours
    assert (
        set(table["encoder"]) == {"toyvision", "toyaudio"} and (table.groupby(["encoder", "space"]).size() == 3).all()
    )
    assert pg.neighbours.value.count('class="pg-neighbours"') == 2 and "mutual k-NN" in pg.neighbours.value
    pg.item.value = "toy/12"  # no sound: no player, no audio neighbours
    assert "<audio" not in pg.media.value and set(pg.last_neighbours["encoder"]) == {"toyvision"}
    pg.nn_cue.value = "HEAR"
    # the neighbours follow the chosen cue's representation
    hear = neighbours.item_neighbours("toy/12", pg.data.llm_space("HEAR"), pg.data.encoder_feats, settings=S(k=3))
    pd.testing.assert_frame_equal(pg.last_neighbours, hear)


def test_generate_shows_highlighted_generation(playground, tiny_run):
    pg = playground
    pg.template.value = "Imagine {caption} and hello sound"
    pg.T.value = 5
    pg.on_generate()
    assert pg.last_generation and len(pg.last_generation.split()) >= 1
    assert 'class="pg-generation"' in pg.generation.value and "5 tokens" in pg.generation.value
    assert "Imagine w0 a red apple and hello sound" in pg.generation.value  # the prompt as the model read it
    # the run's own setting reproduces the run's generation from the cache
    pg.template.value = pg.data.cues["SEE"]
    pg.T.value = MAX_NEW_TOKENS
    pg.on_generate()
    run_text = load_table(tiny_run.generations).query("cue == 'SEE' and id == 'toy/00'")["text"].iloc[0]
    assert pg.last_generation == run_text
    assert views.highlight_html(run_text, LEX, COLOURS) in pg.generation.value
    # a bad template is shown as an error, not raised
    pg.template.value = "no caption slot"
    pg.on_generate()
    assert 'class="pg-error"' in pg.generation.value and "{caption}" in pg.generation.value
    assert not pg.generate_button.disabled


def test_evaluate_gives_custom_and_run_cues_with_ci_reusing_the_cache(playground):
    pg = playground
    pg.template.value = "Listen to {caption}."
    pg.cue_name.value = "LISTEN"
    pg.on_evaluate()
    table = pg.last_evaluation
    assert table is not None, pg.evaluation.value
    assert list(dict.fromkeys(table["cue"])) == ["LISTEN", "SEE", "HEAR", "NONE"]
    assert set(table["encoder"]) == {"toyvision", "toyaudio"} and len(table) == 8
    assert (table["ci_low"] <= table["score"] + 1e-12).all() and (table["score"] <= table["ci_high"] + 1e-12).all()
    assert (table.loc[table["encoder"] == "toyvision", "n_items"] == 12).all()
    assert (table.loc[table["encoder"] == "toyaudio", "n_items"] == 10).all()  # subset takes items with a sound first
    assert pg.progress.value == pg.progress.max == 4 * 3 and pg.progress.bar_style == "success"
    assert "pg-evaluation" in pg.evaluation.value and "data:image/png;base64," in pg.evaluation.value
    # SEE/HEAR/NONE at the run's settings come from the cache the run filled: only LISTEN is generated,
    # and represented while it is generated (its representation pass then reads, computes nothing)
    log = [line for line in table.attrs["log"].splitlines() if " cached, " in line]
    assert len(log) == 4 * 3 * 2  # 4 cues x 3 chunks of 5 items x (generate, represent)
    listen_generate, listen_represent = log[:6:2], log[1:6:2]
    assert all(
        line.startswith("generate: 0 cached, ") and not line.endswith(" 0 to compute") for line in listen_generate
    )
    assert all(line.startswith("represent: ") and line.endswith(" 0 to compute") for line in listen_represent)
    assert all(" 0 to compute" in line for line in log[6:]), log[6:]
    assert "cache: 84 hits, 12 computed" in pg.evaluation.value
    assert "pg-eval-legend" in pg.evaluation.value and "95% CI" in pg.evaluation.value
    assert pg.evaluation.value.index("pg-eval-legend") < pg.evaluation.value.index("pg-table")
    # the run's SEE on the subset scored from its saved representations gives the same number
    sub = PG.playground_subset(pg.data.manifest, 12)
    ids, x = pg.data.llm_space("SEE")
    rows = [ids.index(i) for i in sub["id"]]
    direct = tables.alignment_table({"SEE": (list(sub["id"]), x[rows])}, pg.data.encoder_feats, settings=S(k=3))
    mine = table[table["cue"] == "SEE"].set_index("encoder")["score"]
    for r in direct.itertuples():
        assert mine[r.encoder] == pytest.approx(r.score, abs=1e-6)
    # pressing again with nothing changed reuses the table
    pg.on_evaluate()
    assert pg.last_evaluation is table
    # a run cue's name with another template is refused
    pg.cue_name.value = "SEE"
    pg.on_evaluate()
    assert "pg-error" in pg.evaluation.value and pg.progress.bar_style == "danger"


def test_save_button_writes_params_the_runner_reads(playground, tiny_run):
    pg = playground
    pg.cue_name.value = "LISTEN"
    pg.template.value = "Listen to {caption}."
    pg.on_save()
    assert pg.last_saved == tiny_run.root / "params" / "play.yaml"
    assert "--params-file" in pg.saved.value and "make reproduce PROFILE=tiny" in pg.saved.value
    params = runner.load_profile("tiny", params_file=pg.last_saved)
    assert params["cues"] == {**pg.data.cues, "LISTEN": "Listen to {caption}."}
    pg.template.value = "broken"
    pg.on_save()
    assert "pg-error" in pg.saved.value


def test_load_winner_puts_notebook_14s_cue_in_the_editor(playground, tiny_run):
    pg = playground
    pg.on_load_winner()  # no cue search yet: an error that names notebook 14, nothing changed
    assert "pg-error" in pg.saved.value and "14_cue_search" in pg.saved.value
    tiny_run.save_results(
        pd.DataFrame(
            [
                {
                    "cue": "PICTURE",
                    "template": "Picture {caption}.",
                    "encoder": "toyvision",
                    "n_search_items": 6,
                    "search_score": 0.3,
                    "best_minus_none": 0.02,
                    "chance_best_minus_none_95": 0.03,
                    "corrected_p": 0.4,
                    "n_candidates": 11,
                }
            ]
        ),
        "cue_search_winner",
    )
    try:
        pg.on_load_winner()
        assert pg.cue_name.value == "PICTURE" and pg.template.value == "Picture {caption}."
        assert (
            "chosen for toyvision on 6 search items among 11 candidates, selection-corrected p = 0.4" in pg.saved.value
        )
    finally:
        for ext in ("csv", "json"):
            (tiny_run.results / f"cue_search_winner.{ext}").unlink()


def test_static_summary_shows_item_generations_and_neighbours(tiny_run):
    out = Wd.static_summary(tiny_run, ["toyvision"], ["toyaudio"], lexicons=LEX, colours=COLOURS, settings=S(k=3))
    gens = load_table(tiny_run.generations).query("id == 'toy/00'")
    for g in gens.itertuples():
        assert f"{g.cue}: <code>" in out and views.highlight_html(g.text, LEX, COLOURS) in out
    assert out.count('class="pg-neighbours"') == 2 and "<audio" in out


def test_frontend_detection_is_false_outside_a_kernel():
    assert Wd.has_frontend() is False


def test_the_highlighter_and_the_removal_split_words_alike():
    """One tokeniser (helpers.data.lexicon) for what the playground marks and what 08 removes."""
    from helpers.data.lexicon import find_words as lexicon_words, mark_words, remove_spans

    text = "A red-hot lamp, it's loud"
    visual = {"visual": Lex({"red", "lamp"})}
    spans = views.sensory_spans(text, visual)  # the default finder
    assert [(s, e) for s, e, _ in spans] == [(2, 5), (10, 14)]
    assert [(s, e) for s, e, _ in lexicon_words(text, visual["visual"])] == [(2, 5), (10, 14)]
    assert mark_words(text, visual["visual"]) == "A [red]-hot [lamp], it's loud"
    assert "red" not in remove_spans(text, lexicon_words(text, visual["visual"]))


# --- what the playground explains on screen ----------------------------------------


def _widgets_in(widget):
    """``widget`` and every widget below it (the VBox/HBox tree), in order."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _widgets_in(child)


def test_neighbour_legend_is_on_screen_and_matches_the_table(playground):
    pg = playground
    shown = [w for w in _widgets_in(pg.widget) if "pg-nn-legend" in str(getattr(w, "value", ""))]
    assert shown == [pg.nn_legend]  # rendered once, in the layout (not only built)
    order = list(_widgets_in(pg.widget))
    assert order.index(pg.nn_cue) < order.index(pg.nn_legend) < order.index(pg.neighbours)  # above the table
    legend = pg.nn_legend.value
    assert "outlined in green" in legend and "shared" in legend and "k=3" in legend
    assert "cosine similarity" in legend and "95th percentile" in legend and "L2-normalised" in legend
    # the legend's swatches are the borders the table draws, shared ones exactly where the table says so
    assert f"border:{views.SHARED_BORDER}" in legend and f"border:{views.UNSHARED_BORDER}" in legend
    cells = re.findall(r'<td class="([^"]+)" style="border:([^;]+);', pg.neighbours.value)
    table = pg.last_neighbours
    assert len(cells) == len(table)
    assert [c == "pg-nn pg-shared" for c, _ in cells] == table["shared"].tolist()
    assert [b for _, b in cells] == [views.SHARED_BORDER if s else views.UNSHARED_BORDER for s in table["shared"]]


def test_neighbour_numbers_are_the_cosine_similarities_the_legend_describes(playground):
    """The numbers under the thumbnails: cosine after PRH's clamp + L2 normalisation, over the shared items."""
    pg = playground
    pg.item.value, pg.nn_cue.value = "toy/02", "SEE"
    shown = [
        float(v) for v in re.findall(r"<code title=\"cosine similarity[^\"]*\">([-0-9.]+)</code>", pg.neighbours.value)
    ]
    table = pg.last_neighbours
    assert shown == pytest.approx(table["similarity"].round(2).tolist(), abs=0.006)
    ids, x = pg.data.llm_space("SEE")
    for (enc, space), sub in table.groupby(["encoder", "space"], sort=False):
        _, enc_ids, feats = pg.data.encoder_feats[enc]
        common = [i for i in ids if i in set(enc_ids)]
        raw = (
            x[[ids.index(i) for i in common]]
            if space == "LLM"
            else np.asarray(feats)[[list(enc_ids).index(i) for i in common]]
        )
        prepared = alignment.prepare_features(raw, 0.95)
        me = common.index("toy/02")
        expected = [prepared[me] @ prepared[common.index(j)] for j in sub["id"]]
        assert sub["similarity"].tolist() == pytest.approx(expected)
        # not the plain cosine of the raw features: the clamp is part of what is shown
        plain = raw / np.linalg.norm(raw, axis=1, keepdims=True)
        assert not np.allclose(expected, [plain[me] @ plain[common.index(j)] for j in sub["id"]], atol=1e-3)


def test_legends_without_the_clamp_and_in_the_static_summary(tiny_run):
    assert "clamped" not in views.neighbour_legend_html(5, quantile=1.0) and "k=5" in views.neighbour_legend_html(
        5, 1.0
    )
    assert "layers from 1 on" in views.neighbour_legend_html(5, 0.95, first_layer=1)
    out = Wd.static_summary(tiny_run, ["toyvision"], ["toyaudio"], lexicons=LEX, colours=COLOURS, settings=S(k=3))
    assert out.count('class="pg-legend pg-nn-legend"') == 1 and out.index("pg-nn-legend") < out.index(
        'class="pg-neighbours"'
    )


def test_model_dropdown_shows_short_names_and_keeps_registry_values(playground, model_dirs):
    from helpers.lm import known_models

    pg = playground
    options = dict(pg.model.options)  # label -> value
    assert options["SmolLM2-135M-Instruct"] == "smollm2-135m-instruct"
    assert options["Gemma-3-270M"] == "gemma-3-270m"
    assert options["Qwen3-0.6B"] == "Qwen/Qwen3-0.6B" and options["Qwen3-32B"] == "Qwen/Qwen3-32B"
    assert set(known_models()) <= set(options.values()) and len(options) == len(pg.model.options)  # labels unique
    assert all("/" not in label and len(label) <= 24 for label in options)
    assert (
        pg.model.value == str(model_dirs["qwen3"]) and pg.model.label == model_dirs["qwen3"].name
    )  # a path: its folder
    pg.model.label = "Gemma-3-270M"
    assert pg.model.value == "gemma-3-270m"


def test_picking_a_short_label_loads_the_registry_name(tiny_run):
    asked = []

    def load(name):
        asked.append(name)
        raise RuntimeError("not loaded in this test")

    pg = Wd.Playground(
        tiny_run,
        lm_settings=LMSettings(llm="smollm2-135m-instruct"),
        vision_encoders=["toyvision"],
        settings=S(k=3),
        load_model=load,
    )
    assert pg.model.label == "SmolLM2-135M-Instruct"
    pg.model.label = "Qwen3-0.6B"
    pg.on_generate()
    assert asked == ["Qwen/Qwen3-0.6B"] and "not loaded in this test" in pg.generation.value


def test_model_options_keep_labels_unique():
    assert PG.model_options(["gemma-3-270m", "/tmp/x/Qwen3-0.6B", "Qwen/Qwen3-0.6B", "gemma-3-270m"]) == [
        ("Gemma-3-270M", "gemma-3-270m"),
        ("/tmp/x/Qwen3-0.6B", "/tmp/x/Qwen3-0.6B"),
        ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B"),
    ]
    assert PG.model_label("/models/my-llm/") == "my-llm" and PG.model_label("org/Name-1B") == "Name-1B"
