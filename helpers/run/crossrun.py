"""Combine the results of several runs into the paper's figures (notebook 11).

One run holds one dataset, so the paper's main figure needs two: a vision run (``paper``:
WiT-1024 + DINOv2) gives the x axis and an audio run (``paper-audiocaps`` or
``paper-clotho``: BEATs) the y axis of the (vision alignment, audio alignment) plane. A run
over a dataset with images *and* sounds (the embedded default) gives both axes alone.

Everything here reads what the runs already wrote, nothing is recomputed:

- ``runs/<run>/generations.parquet`` (02): the LLM, the cue templates, ``max_new_tokens``,
  ``do_sample`` and ``enable_thinking`` of the run;
- ``results/<run>/alignment.csv`` (05), ``model_size.csv`` (09), ``length_curve.csv`` (06) and
  ``paired_comparisons.csv`` (07): the scores, with ``k`` on every row, 09's LLMs and ``T``
  (and, since notebook 09 records it, the template of each cue).

Runs are only combined when those settings agree (:func:`check_compatible`): the points of
two runs made with different LLMs, cues, T or k do not belong in one plane.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.data import prompts
from helpers.data.artifacts import RunPaths

MODALITIES = ("vision", "audio")
#: The cue the paper expects to raise alignment with each modality, and the baseline cue (helpers.data.prompts).
MATCHED_CUE, BASELINE_CUE = prompts.MATCHED_CUE, prompts.BASELINE_CUE
#: The comparisons of notebook 07 shown as cue effects.
EFFECT_COMPARISONS = ("SEE-NONE", "HEAR-NONE")

#: Results tables read per run: stem -> the notebook that writes it.
TABLES = {
    "alignment": "05_alignment",
    "model_size": "09_model_size",
    "length_curve": "06_length_and_layers",
    "paired_comparisons": "07_statistics",
}

#: The settings two runs must share, and where each is recorded.
SETTINGS = {
    "llm": "the LLM of 02/03 (generations.parquet, column llm)",
    "cues": "the cue templates of 02 (generations.parquet, columns cue and template)",
    "max_new_tokens": "T of 02 (generations.parquet, column max_new_tokens)",
    "do_sample": "greedy or sampled decoding in 02 (generations.parquet, column do_sample)",
    "enable_thinking": "Qwen3 thinking mode in 02 (generations.parquet, column enable_thinking)",
    "size_llms": "the LLMs of 09 (model_size.csv, column llm)",
    "size_cues": "the cue templates of 09 (model_size.csv, columns cue and template)",
    "size_T": "T of 09 (model_size.csv, column T)",
    "k": "k of mutual k-NN (column k of alignment, model_size, length_curve, paired_comparisons)",
}
_GENERATION_COLUMNS = ["cue", "template", "llm", "max_new_tokens", "do_sample", "enable_thinking"]


class IncompatibleRuns(ValueError):
    """Runs made with different LLMs, cues, T or k; the message names the runs, the field and the values."""


@dataclass
class RunResults:
    """What one run recorded: its settings and the results tables notebook 11 reads.

    A table the run never produced (e.g. 09 not run) is ``None``; ``alignment`` keeps only
    05's generative rows.
    """

    name: str
    settings: dict[str, Any]
    tables: dict[str, pd.DataFrame | None] = field(default_factory=dict)

    def table(self, stem: str) -> pd.DataFrame | None:
        return self.tables.get(stem)

    def encoders(self, modality: str) -> list[str]:
        """The run's encoders of ``modality`` in any of its results tables, in order of appearance."""
        names: list[str] = []
        for df in self.tables.values():
            if df is not None and {"encoder", "modality"} <= set(df.columns):
                names += list(df.loc[df["modality"] == modality, "encoder"])
        return list(dict.fromkeys(names))


def run_names(run_name: str, cross_runs: Sequence[str] | None) -> list[str]:
    """The runs to combine: ``cross_runs``, or the run itself when none are named (a single profile run)."""
    if cross_runs is None:
        return [run_name]
    if isinstance(cross_runs, str):
        cross_runs = [cross_runs]
    names = [str(n) for n in cross_runs]
    if not names:
        raise ValueError("cross_runs is empty: name the runs to combine, e.g. [paper, paper-audiocaps]")
    if len(set(names)) != len(names):
        raise ValueError(f"cross_runs names a run twice: {names}")
    return names


def _read_generation_settings(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    present = set(pq.read_schema(path).names)
    return pd.read_parquet(path, columns=[c for c in _GENERATION_COLUMNS if c in present])


def _single(values: pd.Series, what: str, run: str) -> Any:
    distinct = list(dict.fromkeys(values.dropna().tolist()))
    if len(distinct) > 1:
        raise ValueError(f"run {run!r} mixes several {what}: {distinct}")
    if not distinct:
        return None
    v = distinct[0]
    return v.item() if isinstance(v, np.generic) else v


def _templates(df: pd.DataFrame, run: str, what: str) -> dict[str, str] | None:
    if not {"cue", "template"} <= set(df.columns):
        return None
    out = {}
    for cue, sub in df.groupby("cue", sort=False):
        out[str(cue)] = _single(sub["template"], f"templates for cue {cue!r} in {what}", run)
    return out


def run_settings(generations: pd.DataFrame, tables: Mapping[str, pd.DataFrame | None], run: str) -> dict[str, Any]:
    """The :data:`SETTINGS` of one run from its generations and results tables (``None``: not recorded)."""
    s: dict[str, Any] = dict.fromkeys(SETTINGS)
    g = generations
    for col in ("llm", "max_new_tokens", "do_sample", "enable_thinking"):
        if col in g.columns:
            s[col] = _single(g[col], col, run)
    s["cues"] = _templates(g, run, "generations.parquet")
    size = tables.get("model_size")
    if size is not None and len(size):
        s["size_llms"] = sorted(dict.fromkeys(size["llm"].astype(str)))
        s["size_T"] = _single(size["T"], "T in model_size.csv", run) if "T" in size.columns else None
        s["size_cues"] = _templates(size, run, "model_size.csv")
    ks = sorted({int(v) for df in tables.values() if df is not None and "k" in df.columns for v in df["k"].dropna()})
    s["k"] = ks or None
    for key in ("max_new_tokens", "size_T"):
        if s[key] is not None:
            s[key] = int(s[key])
    for key in ("do_sample", "enable_thinking"):
        if s[key] is not None:
            s[key] = bool(s[key])
    return s


def load_run(name: str, outputs: Path | None = None) -> RunResults:
    """Read one run's settings and the results tables of :data:`TABLES` that exist.

    Raises ``FileNotFoundError`` naming the run when it has no generations (02) or none of the tables.
    """
    run = RunPaths.of(name, outputs)
    gens_path = run.require(run.generations, "02_generation")
    tables: dict[str, pd.DataFrame | None] = {}
    for stem in TABLES:
        path = run.results / f"{stem}.csv"
        df = pd.read_csv(path) if path.is_file() else None
        if df is not None:
            df["run"] = name  # the folder's name, even if the run was copied and renamed
            if stem == "alignment" and "kind" in df.columns:
                df = df[df["kind"] == "generative"].reset_index(drop=True)
        tables[stem] = df
    if all(df is None for df in tables.values()):
        made_by = ", ".join(f"{s}.csv ({nb})" for s, nb in TABLES.items())
        raise FileNotFoundError(
            f"run {name!r} has none of {made_by} in {run.results}: run notebooks 05-09 for it first"
        )
    return RunResults(name, run_settings(_read_generation_settings(gens_path), tables, name), tables)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v!r}" for k, v in value.items()) + "}"
    return repr(value)


def check_compatible(runs: Sequence[RunResults]) -> None:
    """Raise :class:`IncompatibleRuns` unless every recorded :data:`SETTINGS` field agrees across ``runs``.

    A field a run did not record (e.g. no 09 results) is not compared for that run. The message
    names the field, where it is recorded, and each run's value.
    """
    for key, where in SETTINGS.items():
        recorded = [(r.name, r.settings.get(key)) for r in runs if r.settings.get(key) is not None]
        values = [v for _, v in recorded]
        if any(v != values[0] for v in values[1:]):
            detail = "; ".join(f"run {n!r} has {_show(v)}" for n, v in recorded)
            names = ", ".join(repr(n) for n, _ in recorded)
            raise IncompatibleRuns(
                f"runs {names} differ in {key} ({where}): {detail}. Combine only runs made with the same "
                "LLMs, cues, T and k (rerun one with the other's settings)"
            )


def settings_table(runs: Sequence[RunResults]) -> pd.DataFrame:
    """One row per setting, one column per run (text; ``not recorded`` where a run has none)."""
    return pd.DataFrame(
        {
            r.name: [("not recorded" if r.settings.get(k) is None else _show(r.settings[k])) for k in SETTINGS]
            for r in runs
        },
        index=pd.Index(list(SETTINGS), name="setting"),
    ).reset_index()


# ----------------------------------------------------------------------------- the (vision, audio) plane


@dataclass(frozen=True)
class Axis:
    """One encoder of one run: a possible axis of the plane."""

    run: str
    encoder: str
    modality: str

    @property
    def label(self) -> str:
        return f"{self.encoder} ({self.run})"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.-]+", "-", f"{self.run}-{self.encoder}")


def axes(runs: Sequence[RunResults], modality: str) -> list[Axis]:
    """Every (run, encoder) of ``modality`` among ``runs``, in run order."""
    return [Axis(r.name, e, modality) for r in runs for e in r.encoders(modality)]


def _points(run: RunResults) -> pd.DataFrame:
    """The run's plane points: 05's generative score (its own LLM, T = max_new_tokens) and 09's per LLM."""
    cols = ["source", "llm", "cue", "T", "encoder", "modality", "score", "ci_low", "ci_high", "chance", "n_items", "k"]
    parts = []
    al = run.table("alignment")
    if al is not None and len(al):
        parts.append(al.assign(source="alignment", llm=run.settings.get("llm"), T=run.settings.get("max_new_tokens")))
    size = run.table("model_size")
    if size is not None and len(size):
        parts.append(size.assign(source="model_size"))
    if not parts:
        return pd.DataFrame(columns=cols + ["n_params"])
    out = pd.concat(parts, ignore_index=True)
    n_params = (
        size.groupby("llm")["n_params"].first()
        if size is not None and "n_params" in size.columns
        else pd.Series(dtype=float)
    )
    out["n_params"] = out["llm"].map(n_params)
    return out[cols + ["n_params"]]


def plane_table(runs: Sequence[RunResults]) -> pd.DataFrame:
    """The paper's plane: one row per (vision axis, audio axis, source, LLM, cue) with both scores.

    ``source`` is ``alignment`` (05: the run's own LLM at T = max_new_tokens) or ``model_size``
    (09: every LLM at ``size_T``). A point's x comes from the vision axis' run and its y from
    the audio axis' run, joined on (source, LLM, cue, T). Columns: ``vision_run``,
    ``vision_encoder``, ``audio_run``, ``audio_encoder``, ``source``, ``llm``, ``n_params``,
    ``cue``, ``T``, ``k`` and ``vision_*`` / ``audio_*`` for ``score``, ``ci_low``, ``ci_high``,
    ``chance``, ``n_items``. Empty when either modality is missing.
    """
    points = {r.name: _points(r) for r in runs}
    keys = ["source", "llm", "cue", "T"]
    stats = ["score", "ci_low", "ci_high", "chance", "n_items"]
    rows = []
    for v in axes(runs, "vision"):
        pv = points[v.run]
        pv = pv[pv["encoder"] == v.encoder]
        for a in axes(runs, "audio"):
            pa = points[a.run]
            pa = pa[pa["encoder"] == a.encoder]
            left = pv[keys + ["n_params", "k"] + stats].rename(columns={s: f"vision_{s}" for s in stats})
            right = pa[keys + ["n_params"] + stats].rename(
                columns={**{s: f"audio_{s}" for s in stats}, "n_params": "n_params_a"}
            )
            m = left.merge(right, on=keys, how="inner", sort=False)
            m["n_params"] = m["n_params"].fillna(m.pop("n_params_a"))
            m.insert(0, "vision_run", v.run)
            m.insert(1, "vision_encoder", v.encoder)
            m.insert(2, "audio_run", a.run)
            m.insert(3, "audio_encoder", a.encoder)
            rows.append(m)
    lead = ["vision_run", "vision_encoder", "audio_run", "audio_encoder", *keys[:2], "n_params", *keys[2:], "k"]
    cols = lead + [f"{m}_{s}" for m in MODALITIES for s in stats]
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.concat(rows, ignore_index=True)[cols]


def plane_pairs(plane: pd.DataFrame) -> list[tuple[Axis, Axis]]:
    """The (vision axis, audio axis) pairs present in :func:`plane_table`'s result, in order."""
    pairs = plane[["vision_run", "vision_encoder", "audio_run", "audio_encoder"]].drop_duplicates()
    return [
        (Axis(r.vision_run, r.vision_encoder, "vision"), Axis(r.audio_run, r.audio_encoder, "audio"))
        for r in pairs.itertuples()
    ]


def plane_slice(plane: pd.DataFrame, vision: Axis, audio: Axis) -> pd.DataFrame:
    """The rows of one (vision axis, audio axis) pair."""
    sel = (
        (plane["vision_run"] == vision.run)
        & (plane["vision_encoder"] == vision.encoder)
        & (plane["audio_run"] == audio.run)
        & (plane["audio_encoder"] == audio.encoder)
    )
    return plane[sel].reset_index(drop=True)


def profiles_providing(modality: str, llm: str | None) -> list[str]:
    """Profiles whose runs have ``modality`` encoders and (when given) the same LLM: where a missing axis comes from."""
    from helpers.run import runner

    names = []
    for name in runner.profile_names():
        p = runner.load_profile(name)
        if p.get(f"{modality}_encoders") and (llm is None or p.get("llm") == llm):
            names.append(name)
    return names


def missing_axes(runs: Sequence[RunResults]) -> dict[str, str]:
    """Modality -> a sentence saying it is missing and which profile would provide it (empty when both are present)."""
    out = {}
    llm = next((r.settings.get("llm") for r in runs if r.settings.get("llm")), None)
    names = ", ".join(r.name for r in runs)
    for modality in MODALITIES:
        if axes(runs, modality):
            continue
        axis = "x" if modality == "vision" else "y"
        others = [p for p in profiles_providing(modality, llm) if p not in {r.name for r in runs}]
        fix = (
            f"a run of profile {' or '.join(others)} (same LLM) provides it: pass cross_runs=[{names}, {others[0]}]"
            if others
            else f"no profile with the LLM {llm!r} has {modality} encoders: make a run that has them"
        )
        out[modality] = f"no {modality} axis ({axis}): run(s) {names} hold no {modality} encoder results; {fix}"
    return out


# ----------------------------------------------------------------------------- length curves, cue effects


def size_table(runs: Sequence[RunResults]) -> pd.DataFrame:
    """09's ``model_size`` tables of every run, stacked (``run`` column), vision axes first; empty when none."""
    parts = [r.table("model_size") for r in runs]
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    order = {m: i for i, m in enumerate(MODALITIES)}
    return out.sort_values("modality", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def length_curves(runs: Sequence[RunResults], modality: str) -> pd.DataFrame:
    """06's length curves of every run for ``modality``, stacked (``run`` column); empty when none."""
    parts = [r.table("length_curve") for r in runs]
    parts = [p[p["modality"] == modality] for p in parts if p is not None]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def cue_effects(runs: Sequence[RunResults], comparisons: Sequence[str] = EFFECT_COMPARISONS) -> pd.DataFrame:
    """07's paired comparisons ``comparisons`` of every run and encoder, stacked; vision axes first.

    Adds ``matched``: the comparison is the one the paper predicts for the modality (SEE−NONE
    for vision, HEAR−NONE for audio). Holm-adjusted p-values are the runs' own (per run).
    """
    parts = [r.table("paired_comparisons") for r in runs]
    parts = [p[p["comparison"].isin(comparisons)] for p in parts if p is not None]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    out["matched"] = [c == f"{MATCHED_CUE.get(m)}-{BASELINE_CUE}" for c, m in zip(out["comparison"], out["modality"])]
    order = {m: i for i, m in enumerate(MODALITIES)}
    return out.sort_values("modality", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- conclusions from the numbers


def _rank_corr(x: Sequence[float], y: Sequence[float]) -> float:
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    if np.std(rx) == 0 or np.std(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def matched_shifts(plane: pd.DataFrame) -> pd.DataFrame:
    """Per plane pair, source and LLM: how far SEE moves right of NONE and HEAR moves up from NONE.

    ``see_dx`` = vision score(SEE) − vision score(NONE), ``hear_dy`` = audio score(HEAR) − audio
    score(NONE) (point estimates; the CIs of these differences are 07's, see :func:`cue_effects`).
    Rows lacking a cue are left out.
    """
    group = ["vision_run", "vision_encoder", "audio_run", "audio_encoder", "source", "llm"]
    rows = []
    for key, sub in plane.groupby(group, sort=False):
        s = sub.set_index("cue")
        if not {MATCHED_CUE["vision"], MATCHED_CUE["audio"], BASELINE_CUE} <= set(s.index):
            continue
        none = s.loc[BASELINE_CUE]
        rows.append(
            {
                **dict(zip(group, key)),
                "n_params": none["n_params"],
                "see_dx": float(s.loc[MATCHED_CUE["vision"], "vision_score"] - none["vision_score"]),
                "hear_dy": float(s.loc[MATCHED_CUE["audio"], "audio_score"] - none["audio_score"]),
            }
        )
    return pd.DataFrame(rows, columns=[*group, "n_params", "see_dx", "hear_dy"])


def conclusions(plane: pd.DataFrame, effects: pd.DataFrame) -> list[str]:
    """Sentences read off the results: the cue shifts in the plane, 07's matched effects, the trend with size."""
    lines = []
    shifts = matched_shifts(plane)
    for key, sub in shifts.groupby(
        ["vision_run", "vision_encoder", "audio_run", "audio_encoder", "source"], sort=False
    ):
        vr, ve, ar, ae, source = key
        n = len(sub)
        lines.append(
            f"plane {ve} ({vr}) x {ae} ({ar}), {source}: SEE lies right of NONE (higher vision alignment) for "
            f"{int((sub['see_dx'] > 0).sum())} of {n} LLM(s), HEAR above NONE (higher audio alignment) for "
            f"{int((sub['hear_dy'] > 0).sum())} of {n}; mean shifts {sub['see_dx'].mean():+.4f} (x), {sub['hear_dy'].mean():+.4f} (y)"
        )
        sized = sub.dropna(subset=["n_params"])
        if source == "model_size" and sized["n_params"].nunique() >= 3:
            lines.append(
                f"  with model size ({sized['n_params'].nunique()} LLMs): rank correlation of the SEE shift with parameters "
                f"{_rank_corr(sized['n_params'], sized['see_dx']):+.2f}, of the HEAR shift {_rank_corr(sized['n_params'], sized['hear_dy']):+.2f}"
            )
    if effects is not None and len(effects):
        for row in effects[effects["matched"]].itertuples():
            inside = row.ci_low <= 0 <= row.ci_high
            verdict = (
                "the CI includes 0: no clear effect"
                if inside
                else f"{row.cue_1} {'raises' if row.diff > 0 else 'lowers'} {row.modality} alignment"
            )
            lines.append(
                f"07 {row.encoder} ({row.run}, {row.modality}, n={int(row.n_items)}): {row.comparison} {row.diff:+.4f} "
                f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}], Holm p {row.p_holm:.3g} {row.stars}: {verdict}"
            )
    if not lines:
        lines.append("nothing to conclude: no plane points and no paired comparisons in these runs")
    return lines
