"""The prompt playground (notebook 10): the ipywidgets front end over a finished run.

UI only; the pieces it composes live where their concern does:

* :mod:`helpers.report.views`: sensory words highlighted in a generation, thumbnails, players and
  the neighbour table as self-contained HTML;
* :func:`helpers.analyses.neighbours.item_neighbours`: one item's nearest neighbours under the LLM
  representation beside those under each encoder (the per-item quantity mutual k-NN averages);
* :func:`helpers.analyses.playground.evaluate_template`: an edited cue template scored on a subset of the
  run beside the run's SEE / HEAR / NONE cues (what the run computed is a cache hit);
* :func:`helpers.run.runner.save_template_to_params`: the template written into a params file that
  ``python -m helpers.run.runner --params-file`` (``make reproduce PARAMS="--params-file …"``) reads.

:class:`Playground` composes them into widgets whose button handlers are plain methods
(``on_generate``, ``on_evaluate``, ``on_save``) that tests call directly; every result is
also kept on the object (``last_generation``, ``last_neighbours``, ``last_evaluation``,
``last_saved``). Under papermill (``PERCEIVE_HEADLESS``) or without a notebook front end the
notebook calls :func:`static_summary` instead, which shows the same information as HTML.
"""

from __future__ import annotations

import contextlib
import html
import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.analyses.neighbours import item_neighbours
from helpers.analyses.playground import RunData, evaluate_template, model_label, model_options, playground_subset
from helpers.core.cache import counting_cache
from helpers.core.progress import is_headless
from helpers.core.settings import DEFAULT_LM_SETTINGS, DEFAULT_SETTINGS, AlignmentSettings, LMSettings
from helpers.data import prompts
from helpers.data.artifacts import RunPaths
from helpers.lm import Decoding
from helpers.report.views import (
    HIGHLIGHT_COLOURS,
    audio_html,
    count_sensory,
    default_lexicons,
    evaluation_legend_html,
    figure_html,
    highlight_html,
    image_html,
    legend_html,
    neighbour_legend_html,
    neighbours_html,
)
from helpers.run.runner import params_path, rerun_command, save_template_to_params

# --------------------------------------------------------------------------------------
# The widgets
# --------------------------------------------------------------------------------------


def _error_html(exc: BaseException) -> str:
    return f'<div class="pg-error" style="color:#b00020"><b>{type(exc).__name__}</b>: {html.escape(str(exc))}</div>'


@contextlib.contextmanager
def _captured_progress():
    """Run cached steps with text progress, their printed lines captured (returned in the yielded buffer)."""
    buf = io.StringIO()
    saved = os.environ.get("PERCEIVE_HEADLESS")
    os.environ["PERCEIVE_HEADLESS"] = "1"
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            yield buf
    finally:
        if saved is None:
            os.environ.pop("PERCEIVE_HEADLESS", None)
        else:
            os.environ["PERCEIVE_HEADLESS"] = saved


class Playground:
    """Interactive prompt playground over a finished run (see the module docstring).

    Handlers: :meth:`on_item` (item changed), :meth:`on_generate`, :meth:`on_evaluate`,
    :meth:`on_save`; each updates an HTML widget and a ``last_*`` attribute and shows errors
    in the widget instead of raising.
    """

    def __init__(
        self,
        run: RunPaths,
        *,
        lm_settings: LMSettings = DEFAULT_LM_SETTINGS,
        decoding: Decoding = Decoding(),
        settings: AlignmentSettings = DEFAULT_SETTINGS,
        vision_encoders: Sequence[str] = (),
        audio_encoders: Sequence[str] = (),
        models: Sequence[str] = (),
        playground_items: int | None = 60,
        custom_cue: str = "CUSTOM",
        lexicons: Mapping[str, Any] | None = None,
        colours: Mapping[str, str] | None = None,
        profile: str = "default",
        params_file: Path | None = None,
        load_model: Callable[[str], Any] | None = None,
    ):
        """The playground over ``run``: its model (``lm_settings.llm``, loaded with those settings) and
        ``models`` to pick from, the Generate button's starting ``decoding``, the Evaluate button's
        alignment ``settings`` over ``playground_items`` items (``settings.seed`` picks them) and the
        run's encoders; ``lexicons`` / ``colours`` for the highlighting, the cue name ``custom_cue`` an
        edited template gets, ``profile`` / ``params_file`` for what Save writes, and ``load_model``
        (name → model) in place of :func:`helpers.lm.load_configured` (tests pass tiny models).

        Many parameters because a widget takes what it shows and edits: three settings objects and the
        choices of its pickers, highlighting and Save button, each with a working default.
        """
        self.run = run
        self.data = RunData(run, vision_encoders, audio_encoders)
        self.settings, self.playground_items = settings, playground_items
        self.lm_settings = lm_settings
        self.lexicons = dict(default_lexicons() if lexicons is None else lexicons)
        self.colours = {**HIGHLIGHT_COLOURS, **(colours or {})}
        self.profile = profile
        self.params_file = Path(params_file) if params_file else params_path(run)
        if load_model is None:
            from helpers.lm import load_configured

            def load_model(name: str) -> Any:
                return load_configured(lm_settings, name)

        self._load_model = load_model
        self._models: dict[str, Any] = {}
        self._eval_cache: dict[tuple, pd.DataFrame] = {}
        self.last_generation: str | None = None
        self.last_neighbours: pd.DataFrame | None = None
        self.last_evaluation: pd.DataFrame | None = None
        self.last_saved: Path | None = None

        self._make_controls(lm_settings.llm, models, decoding, custom_cue, playground_items)
        self.widget = self._layout()
        self.on_item()

    # -- helpers -----------------------------------------------------------------------

    def _make_controls(
        self,
        llm: str,
        models: Sequence[str],
        decoding: Decoding,
        custom_cue: str,
        playground_items: int | None,
    ) -> None:
        """The widgets: item and cue pickers, template, model and decoding controls, outputs, buttons."""
        import ipywidgets as W

        from helpers.lm import known_models

        items = [(f"{row.caption}  ({row.id})", row.id) for row in self.data.manifest.itertuples()]
        first_cue = next(iter(self.data.cues))
        wide = W.Layout(width="95%")
        self.item = W.Dropdown(options=items, description="item", layout=wide)
        self.cue_name = W.Text(value=custom_cue, description="cue name")
        self.template = W.Textarea(
            value=self.data.cues[first_cue], description="template", layout=W.Layout(width="95%", height="4em")
        )
        self.preset = W.Dropdown(options=list(self.data.cues), value=first_cue, description="start from")
        self.model = W.Dropdown(
            options=model_options([llm, *models, *known_models()]), value=llm, description="model", layout=wide
        )
        self.T = W.IntSlider(
            value=int(decoding.max_new_tokens),
            min=1,
            max=max(512, int(decoding.max_new_tokens)),
            description="T (tokens)",
            style={"description_width": "initial"},
        )
        label = {"description_width": "initial"}
        self.do_sample = W.Checkbox(value=bool(decoding.do_sample), description="sample (else greedy)", style=label)
        self.temperature = W.FloatSlider(
            value=float(decoding.temperature), min=0.05, max=2.0, step=0.05, description="temperature", style=label
        )
        self.top_p = W.FloatSlider(
            value=float(decoding.top_p), min=0.05, max=1.0, step=0.05, description="top-p", style=label
        )
        self.gen_seed = W.IntText(value=int(decoding.seed), description="seed")
        self.generate_button = W.Button(description="Generate", button_style="primary", icon="play")
        self.media = W.HTML()
        self.generation = W.HTML()
        self.nn_cue = W.Dropdown(options=list(self.data.cues), value=first_cue, description="LLM cue")
        self.nn_legend = W.HTML(
            neighbour_legend_html(self.settings.k, self.settings.quantile, self.settings.first_layer)
        )
        self.neighbours = W.HTML()
        fit = W.Layout(width="max-content")  # the whole label, not "Evaluate on 60 it…", and no wider
        self.evaluate_button = W.Button(
            description=f"Evaluate on {playground_items or 'all'} items", button_style="info", layout=fit
        )
        self.progress = W.IntProgress(value=0, min=0, max=1, description="evaluate")
        self.evaluation = W.HTML()
        self.winner_button = W.Button(description="Load search winner", icon="trophy", layout=fit)
        self.save_button = W.Button(description="Save template to run params", button_style="success", layout=fit)
        self.saved = W.HTML()

    def _layout(self) -> Any:
        """Wire the handlers and stack the widgets in reading order."""
        import ipywidgets as W

        self.item.observe(lambda change: self.on_item(), names="value")
        self.nn_cue.observe(lambda change: self.show_neighbours(), names="value")
        self.preset.observe(
            lambda change: setattr(self.template, "value", self.data.cues[change["new"]]), names="value"
        )
        self.generate_button.on_click(self.on_generate)
        self.evaluate_button.on_click(self.on_evaluate)
        self.save_button.on_click(self.on_save)
        self.winner_button.on_click(self.on_load_winner)
        legend = W.HTML(
            f"Sensory words: {legend_html(self.colours)}"
            if self.lexicons
            else "<i>no sensory lexicons loaded: no highlighting</i>"
        )
        return W.VBox(
            [
                W.HTML(f"<h3>Prompt playground · run <code>{html.escape(self.run.name)}</code></h3>"),
                self.item,
                self.media,
                W.HBox([self.preset, self.cue_name, self.winner_button]),
                self.template,
                W.HBox([self.model, self.T]),
                W.HBox([self.do_sample, self.temperature, self.top_p, self.gen_seed]),
                W.HBox([self.generate_button, legend]),
                self.generation,
                W.HTML("<h4>Nearest neighbours: LLM representation vs encoders</h4>"),
                self.nn_cue,
                self.nn_legend,
                self.neighbours,
                W.HTML("<h4>Alignment of the edited template on a subset</h4>"),
                W.HBox([self.evaluate_button, self.progress]),
                self.evaluation,
                self.save_button,
                self.saved,
            ]
        )

    def decoding(self) -> Decoding:
        return Decoding(
            max_new_tokens=int(self.T.value),
            do_sample=bool(self.do_sample.value),
            seed=int(self.gen_seed.value),
            temperature=float(self.temperature.value),
            top_p=float(self.top_p.value),
        )

    def get_model(self, name: str | None = None) -> Any:
        name = name or self.model.value
        if name not in self._models:
            with _captured_progress():  # the loader's weight bars would land in the kernel log
                self._models[name] = self._load_model(name)
        return self._models[name]

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a front end
        from IPython.display import display

        display(self.widget)

    # -- handlers ----------------------------------------------------------------------

    def on_item(self, _: Any = None) -> None:
        """Show the selected item's image and sound, and its neighbours."""
        try:
            row = self.data.item(self.item.value)
            self.media.value = (
                f'<div class="pg-media">{image_html(row["image_path"], 160, title=row["id"])} '
                f"{audio_html(row['audio_path'], autoplay=True, width=240)}<br><b>{html.escape(str(row['caption']))}</b></div>"
            )
        except Exception as exc:  # shown, not raised: a bad file must not kill the playground
            self.media.value = _error_html(exc)
        self.generation.value = ""
        self.show_neighbours()

    def show_neighbours(self) -> None:
        try:
            table = item_neighbours(
                self.item.value,
                self.data.llm_space(self.nn_cue.value, self.settings.first_layer),
                self.data.encoder_feats,
                settings=self.settings,
            )
            self.last_neighbours = table
            self.neighbours.value = neighbours_html(table, self.data.manifest)
        except Exception as exc:
            self.last_neighbours = None
            self.neighbours.value = _error_html(exc)

    def on_generate(self, _: Any = None) -> None:
        """Generate from the edited template for the selected item and show it highlighted."""
        from helpers import lm

        self.generate_button.disabled = True
        self.generation.value = "<i>generating…</i>"
        try:
            prompts.check_template(self.cue_name.value or "cue", self.template.value)
            row = self.data.item(self.item.value)
            user_text = prompts.fill(self.template.value, str(row["caption"]))
            model = self.get_model()
            with _captured_progress() as log:
                gen = lm.generate_cached(model, [lm.format_prompt(model, user_text)], self.decoding(), batch_size=1)[0]
            self.last_generation = gen["text"]
            counts = count_sensory(gen["text"], self.lexicons) if self.lexicons else {}
            counts_text = ", ".join(f"{n} {m}" for m, n in counts.items())
            cached = "cached" if " 1 cached" in log.getvalue() else "generated"
            self.generation.value = (
                f"<div><b>prompt</b>: <code>{html.escape(user_text)}</code> · {len(gen['gen_ids'])} tokens ({cached})"
                f"{' · sensory words: ' + counts_text if counts_text else ''}</div>"
                + highlight_html(gen["text"], self.lexicons, self.colours)
            )
        except Exception as exc:
            self.generation.value = _error_html(exc)
        finally:
            self.generate_button.disabled = False

    def on_evaluate(self, _: Any = None) -> None:
        """Score the edited template and the run's cues on the playground subset; show the table and bars."""
        from helpers.report import plots

        self.evaluate_button.disabled = True
        try:
            name = self.cue_name.value.strip() or "CUSTOM"
            if name in self.data.cues and self.data.cues[name] != self.template.value:
                raise ValueError(f"cue name {name!r} is one of the run's cues with another template; pick a new name")
            cues = {name: self.template.value, **{c: t for c, t in self.data.cues.items() if c != name}}
            subset = playground_subset(
                self.data.manifest[self.data.manifest["id"].isin(self.data.rep_ids or self.data.manifest["id"])],
                self.playground_items,
                self.settings.seed,
            )
            key = (self.model.value, tuple(cues.items()), self.decoding(), tuple(subset["id"]), self.settings)
            if key not in self._eval_cache:
                model = self.get_model()
                self.progress.value, self.progress.bar_style = 0, ""

                def step(done: int, total: int, label: str) -> None:
                    self.progress.max, self.progress.value, self.progress.description = total, done, label

                with _captured_progress() as log, counting_cache() as counts:
                    table = evaluate_template(
                        model,
                        subset,
                        cues,
                        self.data.encoder_feats,
                        self.decoding(),
                        lm_settings=self.lm_settings,
                        settings=self.settings,
                        on_progress=step,
                    )
                table.attrs["log"], table.attrs["cache"] = log.getvalue(), counts
                self._eval_cache[key] = table
            table = self._eval_cache[key]
            self.progress.bar_style = "success"
            self.last_evaluation = table
            hits, todo = table.attrs["cache"].cached, table.attrs["cache"].computed
            shown = table[["cue", "encoder", "modality", "n_items", "score", "ci_low", "ci_high", "chance"]].round(3)
            self.evaluation.value = (
                f'<div class="pg-evaluation">{len(subset)} items · model <code>{html.escape(model_label(self.model.value))}</code> · '
                f"T={self.T.value} · cache: {hits} hits, {todo} computed<br>"
                + evaluation_legend_html(self.settings.k)
                + shown.to_html(index=False, classes="pg-table")
                + figure_html(
                    plots.alignment_bars(table, title=f"{name} vs the run's cues ({len(subset)} items, 95% CI)")
                )
                + "</div>"
            )
        except Exception as exc:
            self.progress.bar_style = "danger"
            self.evaluation.value = _error_html(exc)
        finally:
            self.evaluate_button.disabled = False

    def on_load_winner(self, _: Any = None) -> None:
        """Put notebook 14's winning cue (name and template) in the editor; say where it came from."""
        from helpers.analyses.cue_search import saved_winner

        try:
            name, template, line = saved_winner(self.run)
            self.cue_name.value, self.template.value = name, template
            self.saved.value = f'<div class="pg-saved">Loaded the cue search winner <b>{html.escape(name)}</b> ({html.escape(line)}).</div>'
        except Exception as exc:
            self.saved.value = _error_html(exc)

    def on_save(self, _: Any = None) -> None:
        """Write the edited template into the run's params file and show the command that reruns with it."""
        try:
            name = self.cue_name.value.strip()
            path = save_template_to_params(self.params_file, name, self.template.value, self.data.cues)
            self.last_saved = path
            self.saved.value = (
                f'<div class="pg-saved">Saved cue <b>{html.escape(name)}</b> to <code>{html.escape(str(path))}</code>. '
                f"Rerun the main notebooks with it:<br><code>{html.escape(rerun_command(path, self.profile))}</code></div>"
            )
        except Exception as exc:
            self.saved.value = _error_html(exc)


# --------------------------------------------------------------------------------------
# Headless
# --------------------------------------------------------------------------------------


def has_frontend() -> bool:
    """True inside a Jupyter kernel that a front end can talk to (not plain Python, not headless)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell" and not is_headless()


def static_summary(
    run: RunPaths,
    vision_encoders: Sequence[str] = (),
    audio_encoders: Sequence[str] = (),
    *,
    item_id: str | None = None,
    settings: AlignmentSettings = DEFAULT_SETTINGS,
    lexicons: Mapping[str, Any] | None = None,
    colours: Mapping[str, str] | None = None,
    neighbour_cue: str | None = None,
) -> str:
    """The playground's information without widgets, as one HTML string.

    One item (``item_id``, default the first with a sound) with its image and player, its
    generations under each of the run's cues with sensory words highlighted, and its
    neighbours under the LLM representation (``neighbour_cue``, default the run's first cue)
    beside those under each encoder.
    """
    data = RunData(run, vision_encoders, audio_encoders)
    lexicons = dict(default_lexicons() if lexicons is None else lexicons)
    colours = {**HIGHLIGHT_COLOURS, **(colours or {})}
    if item_id is None:
        with_sound = data.manifest[
            data.manifest["audio_path"].notna() & data.manifest["id"].isin(data.rep_ids or data.manifest["id"])
        ]
        item_id = str((with_sound if not with_sound.empty else data.manifest)["id"].iloc[0])
    row = data.item(item_id)
    parts = [
        f"<h3>Playground summary · run <code>{html.escape(run.name)}</code> · item <code>{html.escape(item_id)}</code></h3>",
        "<p>(Static view: the notebook ran headlessly. Open it in JupyterLab for the live widgets.)</p>",
        f"{image_html(row['image_path'], 160, title=item_id)} {audio_html(row['audio_path'], width=240)}<br><b>{html.escape(str(row['caption']))}</b>",
    ]
    if lexicons:
        parts.append(f"<p>Sensory words: {legend_html(colours)}</p>")
    if data.generations is not None:
        for g in data.generations[data.generations["id"] == item_id].itertuples():
            parts.append(f"<h4>{html.escape(g.cue)}: <code>{html.escape(g.user_text)}</code></h4>")
            parts.append(highlight_html(g.text, lexicons, colours))
    else:
        parts.append("<p>No generations in this run (run 02_generation).</p>")
    cue = neighbour_cue or next(iter(data.cues))
    try:
        table = item_neighbours(
            item_id, data.llm_space(cue, settings.first_layer), data.encoder_feats, settings=settings
        )
        parts.append(f"<h4>Nearest neighbours (LLM representation under {html.escape(cue)} vs encoders)</h4>")
        parts.append(neighbour_legend_html(settings.k, settings.quantile, settings.first_layer))
        parts.append(neighbours_html(table, data.manifest, players=False))
    except (KeyError, ValueError) as exc:
        parts.append(_error_html(exc))
    return "\n".join(parts)


__all__ = ["Playground", "has_frontend", "static_summary"]
