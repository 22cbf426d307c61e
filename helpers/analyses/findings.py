"""What a run's results say about the paper's claims: one findings table per notebook, and its prose.

Every analysis notebook (05–09) ends with a "What this shows" cell that is *computed* from the
results tables it just saved, never written by hand. A finding is one paper claim tested once:

- ``claim``: the paper's statement (e.g. "SEE raises alignment with the vision encoder");
- ``test``: what was compared (``SEE − NONE · efficientnet-lite2 (vision) · generative``);
- ``effect`` with its 95 % CI (``ci_low``, ``ci_high``), ``se`` and two-sided ``p`` from the
  dyadic-robust standard error (:mod:`helpers.metrics.knn_inference`), ``n`` items;
- ``family``: ``confirmatory`` (:data:`CONFIRMATORY`: the paper's claims as the run can test them,
  one family corrected together, Bonferroni over its size) or ``exploratory`` (Holm within the
  notebook); ``p_adj`` the corrected p;
- ``expected``: the sign the paper predicts (+1, −1, or 0 where the paper expects no effect); for 0,
  ``p_equiv`` / ``p_equiv_adj``: an equivalence test that the effect lies within
  ± :data:`EQUIVALENCE_MARGIN` (no effect is concluded from nothing less);
- ``paper_sign`` (the effect has that sign), ``ci_excludes_0`` (p < 0.05), and a ``verdict``
  (:data:`VERDICTS`), plus ``cautions`` (:data:`CAUTIONS`, ``;``-separated codes) where the
  evidence is weak: few items, significance lost to the correction, an effect smaller than its
  spread across k, a sign that flips across k or metrics, generations that stop early.

:func:`report` turns the table into Markdown: per claim its outcome (:func:`claim_outcome`), the
table, and one sentence per finding that goes against the paper or carries a caution. Numbers are
rounded for reading only; the saved table keeps them whole.

One module because the verdict rules, the claims each notebook tests and the prose that states them
change together: the report says in words what the rules decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sp

from helpers.data.prompts import BASELINE_CUE, CUE_SENSES, MATCHED_CUE
from helpers.metrics.knn_inference import effective_df
from helpers.metrics.stats import holm

ALPHA = 0.05
SMALL_N = 100  # below this the calibration harness measures type-I errors of 7–9 % at a nominal 5 % (README)
EOS_GAP = 0.2  # cues whose EOS rates differ by more than this average different numbers of tokens
EQUIVALENCE_MARGIN = 0.02
"""Where the paper expects no effect, "no effect" is concluded only from an equivalence test (two one-sided
tests) that the effect lies within ± this margin of mutual k-NN: 0.02 is one shared neighbour in every five
items at k = 10, the smallest cue effect worth reporting (README, statistics)."""

#: The paper's claims as one run can test them, corrected together (Bonferroni over the family's size,
#: :func:`confirmatory_size`, so that each notebook can adjust its share before the others have run). Every
#: other test is exploratory: Holm within its notebook's findings.
CONFIRMATORY = {
    "matched": "{cue} raises alignment with the {modality} encoder",
    "interaction": "generating carries a cue effect that a single pass does not",
    "removal": "deleting the sensory words removes the gain",
}
CONFIRMATORY_PER_ENCODER = len(CONFIRMATORY)

VERDICTS = {
    "supports": "agrees with the paper (its sign, p < 0.05 after the family's correction)",
    "weak": "in the paper's direction and p < 0.05, but not after the family's correction",
    "direction": "in the paper's direction, but p ≥ 0.05: not distinguishable from no effect",
    "opposite": "opposite to the paper's direction, but p ≥ 0.05",
    "contradicts": "contradicts the paper: the opposite sign, p < 0.05 after the family's correction",
    "against": "opposite to the paper's direction and p < 0.05, but not after the family's correction",
    "equivalent": "as the paper expects: no effect (equivalent to 0 within the margin, after correction)",
    "undetermined": "the paper expects no effect; neither a difference nor equivalence to 0 is shown",
    "differs": "the paper expects no effect here, but p < 0.05 after the family's correction",
    "no_ci": "a point estimate without a CI: its sign only",
    "zero": "no difference at all",
}
SHORT = {
    "supports": "agreeing",
    "weak": "in its direction, not after correction",
    "direction": "in its direction, p ≥ 0.05",
    "opposite": "opposite, p ≥ 0.05",
    "contradicts": "contradicting",
    "against": "opposite, not after correction",
    "equivalent": "equivalent to no effect",
    "undetermined": "undetermined",
    "differs": "showing an unexpected effect",
    "no_ci": "without a CI",
    "zero": "no difference",
}
CAUTIONS = {
    "small_n": "only {n} items (the tests are calibrated from about 100 items on)",
    "holm_lost": "p = {p:.3g} before, {p_adj:.3g} after the family's correction",
    "below_spread": "the effect is smaller than its spread across k ({spread:.3f})",
    "flips": "its sign flips across k and metrics (the paper's sign in {agree} of {settings} settings)",
    "eos": "{eos}",
    "few_models": "{note}",
}
COLUMNS = [
    "notebook",
    "claim",
    "test",
    "encoder",
    "modality",
    "n",
    "k",
    "effect",
    "ci_low",
    "ci_high",
    "p",
    "p_adj",
    "family",
    "p_equiv",
    "p_equiv_adj",
    "expected",
    "paper_sign",
    "ci_excludes_0",
    "verdict",
    "cautions",
    "spread",
    "agree",
    "settings",
    "note",
    "se",
]
KIND_NAMES = {
    "gen_mean": "generative",
    "prompt_last": "single pass, last prompt token",
    "prompt_mean": "single pass, prompt mean",
}


# ----------------------------------------------------------------------------- judging one effect


def verdict(effect: float, p: float, p_adj: float, expected: int, p_equiv_adj: float = np.nan) -> str:
    """The :data:`VERDICTS` code of one effect against the sign the paper predicts (+1, −1, 0).

    ``p``: the test's two-sided p (below α its CI excludes 0); ``p_adj``: after the family's correction
    (missing counts as *not* significant, whichever way the effect goes); ``p_equiv_adj``: the corrected
    equivalence p, for ``expected == 0``.
    """
    if _missing(p):
        return "no_ci"
    excludes = p < ALPHA
    significant = not _missing(p_adj) and p_adj < ALPHA
    if expected == 0:
        if significant:
            return "differs"
        return "equivalent" if not _missing(p_equiv_adj) and p_equiv_adj < ALPHA else "undetermined"
    if effect == 0:
        return "zero"
    if np.sign(effect) != expected:
        return ("contradicts" if significant else "against") if excludes else "opposite"
    if not excludes:
        return "direction"
    return "supports" if significant else "weak"


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or bool(pd.isna(x))


def equivalence_p(effect: float, se: float, n: int, margin: float = EQUIVALENCE_MARGIN) -> float:
    """Two one-sided t tests that |effect| < ``margin``, on the paired test's degrees of freedom
    (:func:`helpers.metrics.knn_inference.effective_df`): the larger of their p-values."""
    if _missing(se) or se <= 0 or n < 2:
        return float("nan")
    df = effective_df(n)
    return float(max(sp.t.sf((effect + margin) / se, df), sp.t.sf((margin - effect) / se, df)))


def finding(
    notebook: str,
    claim: str,
    test: str,
    effect: float,
    *,
    expected: int,
    ci: tuple[float, float] = (np.nan, np.nan),
    p: float = np.nan,
    se: float = np.nan,
    n: int = 0,
    k: float = np.nan,
    encoder: str = "",
    modality: str = "",
    family: str = "exploratory",
    cautions: Sequence[str] = (),
    spread: float = np.nan,
    agree: int = 0,
    settings: int = 0,
    note: str = "",
) -> dict:
    """One row of a findings table, before correction: :func:`table` adjusts the family's p-values and judges.

    Many parameters because it builds one row of the findings table and each parameter is one of its columns.
    """
    if family not in ("confirmatory", "exploratory"):
        raise ValueError(f"family must be confirmatory or exploratory, got {family!r}")
    low, high = float(ci[0]), float(ci[1])
    codes = list(cautions)
    if 0 < n < SMALL_N:
        codes.insert(0, "small_n")
    return {
        "notebook": notebook,
        "claim": claim,
        "test": test,
        "encoder": encoder,
        "modality": modality,
        "n": int(n),
        "k": k,
        "effect": float(effect),
        "ci_low": low,
        "ci_high": high,
        "p": float(p),
        "p_adj": np.nan,
        "family": family,
        "p_equiv": equivalence_p(effect, se, n) if expected == 0 else np.nan,
        "p_equiv_adj": np.nan,
        "expected": int(expected),
        "paper_sign": bool(expected != 0 and np.sign(effect) == expected),
        "ci_excludes_0": bool(not _missing(p) and p < ALPHA),
        "verdict": "",
        "cautions": ";".join(dict.fromkeys(codes)),
        "spread": float(spread),
        "agree": int(agree),
        "settings": int(settings),
        "note": note,
        "se": float(se),
    }


def confirmatory_size(modalities: Sequence[str], cues: Sequence[str] = tuple(CUE_SENSES)) -> int:
    """Size of the run's confirmatory family: :data:`CONFIRMATORY_PER_ENCODER` tests per encoder whose
    modality has its matched cue among ``cues`` (``modalities``: one entry per encoder)."""
    return CONFIRMATORY_PER_ENCODER * sum(1 for m in modalities if MATCHED_CUE.get(m) in set(cues))


def family_size(encoder_feats: Mapping[str, tuple]) -> int:
    """:func:`confirmatory_size` of a run from its encoders (name → (modality, ids, features))."""
    return confirmatory_size([modality for modality, *_ in encoder_feats.values()])


def table(rows: Sequence[dict], confirmatory: int | None = None) -> pd.DataFrame:
    """Findings rows as a DataFrame with the :data:`COLUMNS`, corrected and judged.

    Confirmatory rows: ``p_adj`` = min(1, ``confirmatory`` · p), Bonferroni over the run's confirmatory
    family (:func:`confirmatory_size`; its rows here when None). Exploratory rows: Holm over this table's
    exploratory rows. Equivalence p-values are corrected the same way within each family.
    """
    df = pd.DataFrame(list(rows), columns=COLUMNS)
    if df.empty:
        return df
    for fam in ("confirmatory", "exploratory"):
        rows_f = (df["family"] == fam).to_numpy()
        if not rows_f.any():
            continue
        for raw, adj in (("p", "p_adj"), ("p_equiv", "p_equiv_adj")):
            vals = df.loc[rows_f, raw].to_numpy(dtype=float)
            if fam == "confirmatory":
                m = confirmatory if confirmatory is not None else int(np.sum(~np.isnan(vals)))
                df.loc[rows_f, adj] = np.minimum(1.0, vals * max(m, 1))
            else:
                df.loc[rows_f, adj] = holm(vals)
    df["verdict"] = [verdict(r.effect, r.p, r.p_adj, r.expected, r.p_equiv_adj) for r in df.itertuples()]
    lost = [
        (not _missing(r.p) and not _missing(r.p_adj) and r.p < ALPHA <= r.p_adj and r.expected != 0)
        for r in df.itertuples()
    ]
    df["cautions"] = [
        ";".join(dict.fromkeys(filter(None, c.split(";") + ["holm_lost"] * bool(x))))
        for c, x in zip(df["cautions"], lost)
    ]
    return df


def read(path) -> pd.DataFrame:
    """A saved ``findings_NN.csv`` (its text columns empty, not NaN, where a finding has none)."""
    df = pd.read_csv(
        path, dtype={c: str for c in ("notebook", "claim", "test", "verdict", "cautions", "note", "family")}
    )
    text = ["claim", "test", "encoder", "modality", "verdict", "cautions", "note", "family"]
    df[text] = df[text].astype(object).fillna("")
    return df


# ----------------------------------------------------------------------------- the claims of each notebook


def cue_pairs(
    names: Sequence[str], kinds: Sequence[str] = ("gen_mean", "prompt_last", "prompt_mean")
) -> dict[str, str]:
    """``{"SEE/<kind>": "NONE/<kind>", "HEAR/<kind>": "NONE/<kind>"}`` for every kind among ``names``
    (05's ``kind_vectors``): the comparisons for :func:`helpers.analyses.ablations.paired_alignment`."""
    have = set(names)
    return {
        f"{cue}/{kind}": f"{BASELINE_CUE}/{kind}"
        for kind in kinds
        for cue in CUE_SENSES
        if {f"{cue}/{kind}", f"{BASELINE_CUE}/{kind}"} <= have
    }


def llm_cue_pairs(names: Sequence[str]) -> dict[str, str]:
    """``{"<llm>|SEE": "<llm>|NONE", ...}`` among 09's representation names ``<llm>|<cue>``."""
    have = set(names)
    llms = dict.fromkeys(n.rsplit("|", 1)[0] for n in names)
    return {
        f"{llm}|{cue}": f"{llm}|{BASELINE_CUE}"
        for llm in llms
        for cue in CUE_SENSES
        if {f"{llm}|{cue}", f"{llm}|{BASELINE_CUE}"} <= have
    }


def _matched(modality: str, cue: str) -> bool:
    return MATCHED_CUE.get(modality) == cue


def _encoder_label(row) -> str:
    return f"{row['encoder']} ({row['modality']})"


def _spread(robust: pd.DataFrame | None, encoder: str, column: str) -> tuple[float, int, int]:
    """(range of ``column`` across k for mutual k-NN, settings with the paper's sign, settings) for one encoder."""
    if robust is None or robust.empty or column not in robust:
        return float("nan"), 0, 0
    rows = robust[robust["encoder"] == encoder].dropna(subset=[column])
    knn = rows[rows["metric"] == "mutual_knn"][column]
    spread = float(knn.max() - knn.min()) if len(knn) > 1 else float("nan")
    return spread, int((rows[column] > 0).sum()), len(rows)


def _robustness_cautions(
    effect: float, robust: pd.DataFrame | None, encoder: str, column: str, sign: int
) -> tuple[list[str], dict]:
    spread, positive, total = _spread(robust, encoder, column)
    codes, values = [], {"spread": spread, "agree": positive if sign > 0 else total - positive, "settings": total}
    if not math.isnan(spread) and abs(effect) < spread:
        codes.append("below_spread")
    if total and 0 < positive < total:
        codes.append("flips")
    return codes, values


def _paired_finding(notebook: str, claim: str, test: str, r: Mapping, expected: int, **extra: Any) -> dict:
    """:func:`finding` for one row of a paired table (``diff``, ``ci_low``, ``ci_high``, ``p_value``, ``se``,
    ``n_items``, ``k``, ``encoder``, ``modality``: :func:`helpers.analyses.ablations.paired_alignment`, 07's comparisons,
    06's single vs generative, the interaction); ``extra``: family, cautions, note and caution values."""
    return finding(
        notebook,
        claim,
        test,
        r["diff"],
        expected=expected,
        ci=(r["ci_low"], r["ci_high"]),
        p=r["p_value"],
        se=r.get("se", np.nan),
        n=r["n_items"],
        k=r.get("k", np.nan),
        encoder=r["encoder"],
        modality=r["modality"],
        **extra,
    )


def cue_effects(
    paired: pd.DataFrame,
    notebook: str,
    robust: pd.DataFrame | None = None,
    lengths: pd.DataFrame | None = None,
    interaction: pd.DataFrame | None = None,
    confirmatory: int | None = None,
) -> pd.DataFrame:
    """Findings from paired cue comparisons: the matched cue against NONE (and SEE − HEAR) per encoder.

    ``paired`` is 07's ``paired_comparisons`` (``comparison``, ``diff``, ``se``, ``p_value``) or 05's
    :func:`helpers.analyses.ablations.paired_alignment` over :func:`cue_pairs` (``condition``, ``baseline``:
    ``<cue>/<kind>``). Kept: SEE − NONE against vision and HEAR − NONE against audio (generative:
    confirmatory), SEE − HEAR (exploratory), and for a single-pass kind the cue effect the paper
    expects to be absent (exploratory, judged by an equivalence test). ``interaction``:
    :func:`helpers.analyses.ablations.interaction_alignment`, the cue effect on the generative representation
    minus that on a single pass, per item (the paper's claim as stated; confirmatory for the last prompt
    token). ``robust``: 07's robustness table, for the spread and sign-flip cautions; ``lengths``: 02's
    ``generation_lengths``, for the EOS caution. ``confirmatory``: the run's family size
    (:func:`confirmatory_size`).
    """
    df = _as_comparisons(paired)
    rows = []
    for r in df.to_dict("records"):
        c1, c2, mod = r["cue_1"], r["cue_2"], r["modality"]
        family = "exploratory"
        if c2 == BASELINE_CUE and _matched(mod, c1):
            sign, claim, family = 1, CONFIRMATORY["matched"].format(cue=c1, modality=mod), "confirmatory"
        elif {c1, c2} == set(CUE_SENSES) and mod in MATCHED_CUE:
            sign = 1 if _matched(mod, c1) else -1
            claim = f"{MATCHED_CUE[mod]} beats {c2 if sign > 0 else c1} against the {mod} encoder"
        else:
            continue
        kind = r.get("kind", "gen_mean")
        if kind != "gen_mean":
            sign, claim, family = 0, "single-pass embeddings do not show the cue effect", "exploratory"
        codes, values = ([], {})
        if kind == "gen_mean" and c2 == BASELINE_CUE:
            codes, values = _robustness_cautions(r["diff"], robust, r["encoder"], f"{c1}-{c2}", sign)
        note = _eos_gap(lengths, c1, c2) if kind == "gen_mean" else ""
        test = f"{c1} − {c2} · {_encoder_label(r)} · {KIND_NAMES.get(kind, kind)}"
        cautions = codes + ["eos"] * bool(note)
        rows.append(
            _paired_finding(notebook, claim, test, r, sign, family=family, cautions=cautions, note=note, **values)
        )
    rows += _interaction_findings(interaction, notebook)
    return table(rows, confirmatory)


def _interaction_findings(interaction: pd.DataFrame | None, notebook: str) -> list[dict]:
    """Findings rows of :func:`helpers.analyses.ablations.interaction_alignment` for the matched cues: confirmatory
    against the last prompt token, exploratory against the prompt mean."""
    rows: list[dict] = []
    for r in [] if interaction is None else interaction.to_dict("records"):
        if not _matched(r["modality"], r["cue"]):
            continue
        test = (
            f"({r['cue']} − {BASELINE_CUE}) generative − ({r['cue']} − "
            f"{BASELINE_CUE}) {KIND_NAMES.get(r['single'], r['single'])} · {_encoder_label(r)}"
        )
        family = "confirmatory" if r["single"] == "prompt_last" else "exploratory"
        rows.append(_paired_finding(notebook, CONFIRMATORY["interaction"], test, r, 1, family=family))
    return rows


def _as_comparisons(paired: pd.DataFrame) -> pd.DataFrame:
    """07's table as is; ``paired_alignment`` rows over ``<cue>/<kind>`` names split into cues and kind."""
    if paired.empty or "comparison" in paired:
        return paired
    df = paired.copy()
    df[["cue_1", "kind"]] = df["condition"].str.split("/", n=1, expand=True)
    df["cue_2"] = df["baseline"].str.split("/", n=1).str[0]
    return df


def _eos_gap(lengths: pd.DataFrame | None, c1: str, c2: str) -> str:
    """A sentence when cues ``c1`` and ``c2`` stopped at EOS at rates :data:`EOS_GAP` apart (02's table), else ""."""
    if lengths is None or lengths.empty or not {c1, c2} <= set(lengths["cue"]):
        return ""
    rows = lengths.set_index("cue")
    (hi, lo) = sorted((c1, c2), key=lambda c: rows.loc[c, "eos_rate"], reverse=True)
    if rows.loc[hi, "eos_rate"] - rows.loc[lo, "eos_rate"] <= EOS_GAP:
        return ""
    return (
        f"{hi}'s generations stopped at EOS {rows.loc[hi, 'eos_rate']:.0%} of the time against "
        f"{rows.loc[lo, 'eos_rate']:.0%} for {lo} (mean {rows.loc[hi, 'mean_tokens']:.0f} vs "
        f"{rows.loc[lo, 'mean_tokens']:.0f} tokens), so part of the difference can come from length"
    )


def generation_effects(svg: pd.DataFrame, curve: pd.DataFrame, notebook: str = "06") -> pd.DataFrame:
    """Findings of 06: does generating help the matched cue (generative − last prompt token, paired),
    and does alignment rise with T (the sign of the rank correlation of score with T, no CI)?

    The EOS confound is attached to every row of a cue whose generations stop early far more often
    than another cue's (``frac_shorter`` at the longest T, from the length curve).
    """
    rows, eos = [], _eos_notes(curve)
    for r in svg[svg["baseline"] == "prompt_last"].to_dict("records"):
        if not _matched(r["modality"], r["cue"]):
            continue
        test = f"{r['cue']} generative − last prompt token · {_encoder_label(r)}"
        cautions, note = ["eos"] if r["cue"] in eos else [], eos.get(r["cue"], "")
        claim = "generating raises alignment above a single pass"
        rows.append(_paired_finding(notebook, claim, test, r, 1, cautions=cautions, note=note))
    for (enc, cue), sub in curve[curve["representation"].isin(["prefix", "gen_mean"])].groupby(
        ["encoder", "cue"], sort=False
    ):
        mod = sub["modality"].iloc[0]
        if not _matched(mod, cue) or sub["T"].nunique() < 3:
            continue
        rho = sub[["T", "score"]].rank().corr().iloc[0, 1]
        rows.append(
            finding(
                notebook,
                "alignment grows with generation length T",
                f"{cue} · {enc} ({mod}) · rank correlation of score "
                f"with T over T = {', '.join(map(str, sorted(sub['T'].unique())))}",
                float(rho),
                expected=1,
                n=int(sub["n_items"].iloc[0]),
                encoder=enc,
                modality=mod,
                cautions=["eos"] if cue in eos else [],
                note=eos.get(cue, ""),
            )
        )
    return table(rows)


def _eos_notes(curve: pd.DataFrame) -> dict[str, str]:
    """Cue → a sentence, for cues whose share of generations ended before the longest T exceeds another's by :data:`EOS_GAP`."""
    full = curve[curve["representation"] == "gen_mean"].dropna(subset=["frac_shorter"])
    if full.empty:
        return {}
    rate = full.groupby("cue", sort=False)["frac_shorter"].max()
    low = rate.min()
    return {
        cue: (
            f"{cue}'s generations ended (EOS) before T = {int(full['T'].max())} for {r:.0%} of items against "
            f"{low:.0%} for {rate.idxmin()}, so its long-T means average fewer tokens"
        )
        for cue, r in rate.items()
        if r - low > EOS_GAP
    }


ABLATION_CLAIMS = {  # a label's first key it contains → (claim, expected sign, family); None: no claim
    "sensory − non-sensory": (
        "random sensory words lower alignment more than random non-sensory words",
        -1,
        "exploratory",
    ),
    "non-sensory words (control)": None,  # a control; the paper claims nothing of it on its own
    "control": ("deleting as many random words changes nothing", 0, "exploratory"),
    "sensory − random words removed": (CONFIRMATORY["removal"], -1, "confirmatory"),
    "sensory words removed": ("deleting the sensory words lowers alignment", -1, "exploratory"),
    "caption →": ("random sensory words do not help (they lower alignment)", -1, "exploratory"),
    "random": ("random sensory words do not help (they lower alignment)", -1, "exploratory"),
}


def ablation_effects(sensory: pd.DataFrame, notebook: str = "08", confirmatory: int | None = None) -> pd.DataFrame:
    """Findings of 08 on the matched rows (SEE × vision, HEAR × audio).

    Confirmatory: deleting the sensory words lowers alignment *more than deleting as many random
    non-sensory words* (the two edited texts compared directly, per item). Exploratory: random sensory
    words lower alignment (appended or replacing the caption), and more than as many random non-sensory
    words appended (compared directly), each deletion against the unedited text, and the removal
    control's "changes nothing" (an equivalence test)."""
    rows = []
    for r in sensory.to_dict("records"):
        if not _matched(r["modality"], r["cue"]):
            continue
        ablation = r["ablation"]
        key = next(k for k in ABLATION_CLAIMS if k in ablation)
        if ABLATION_CLAIMS[key] is None:
            continue
        claim, expected, family = ABLATION_CLAIMS[key]
        test = f"{r['cue']} · {ablation} · {_encoder_label(r)}"
        rows.append(_paired_finding(notebook, claim, test, r, expected, family=family))
    return table(rows, confirmatory)


def model_size_effects(paired: pd.DataFrame, models: pd.DataFrame, notebook: str = "09") -> pd.DataFrame:
    """Findings of 09: per LLM the matched cue effect (paired, Holm over the table), and whether it
    grows with size (the largest LLM's effect minus the smallest's, a point estimate).

    ``paired``: :func:`helpers.analyses.ablations.paired_alignment` over ``<llm>|<cue>`` names (:func:`llm_cue_pairs`); ``models``: 09's table with ``llm`` and ``n_params``.
    """
    if paired.empty:
        return table([])
    df = paired.copy()
    df[["llm", "cue_1"]] = df["condition"].str.rsplit("|", n=1, expand=True)
    df = df.merge(models[["llm", "n_params"]], on="llm", how="left")
    df = df[[_matched(m, c) for m, c in zip(df["modality"], df["cue_1"])]]
    rows = [
        _paired_finding(
            notebook,
            f"{r['cue_1']} raises alignment with the {r['modality']} encoder",
            f"{r['llm']} · {r['cue_1']} − {BASELINE_CUE} · {_encoder_label(r)}",
            r,
            expected=1,
        )
        for r in df.to_dict("records")
    ]
    for (enc, cue), sub in df.groupby(["encoder", "cue_1"], sort=False):
        rows.extend(_size_trend(sub.dropna(subset=["n_params"]).sort_values("n_params"), enc, cue, notebook))
    return table(rows)


def _size_trend(sub: pd.DataFrame, encoder: str, cue: str, notebook: str) -> list[dict]:
    """With two LLMs the larger one's effect minus the smaller one's; with three or more the rank
    correlation of the effect with the parameter count. Neither has a CI."""
    n_llms = sub["llm"].nunique()
    if n_llms < 2:
        return []
    mod = sub["modality"].iloc[0]
    if n_llms == 2:
        small, large = sub.iloc[0], sub.iloc[-1]
        test, effect = f"{large['llm']} minus {small['llm']}", float(large["diff"] - small["diff"])
        codes, note = ["few_models"], "two LLMs: a direction, not a trend test"
    else:
        test, effect = (
            f"rank correlation of the effect with size over {n_llms} LLMs",
            float(sub[["n_params", "diff"]].rank().corr().iloc[0, 1]),
        )
        codes, note = [], ""
    return [
        finding(
            notebook,
            "the cue effect grows with model size",
            f"{cue} − {BASELINE_CUE} · {encoder} ({mod}) · {test}",
            effect,
            expected=1,
            encoder=encoder,
            modality=mod,
            cautions=codes,
            note=note,
        )
    ]


def null_line(null: pd.DataFrame, n_perm: int) -> str:
    """07's permutation table in one sentence: how many alignment values beat their null after Holm
    (or that none can: with ``n_perm`` permutations the smallest p is 1/(n_perm + 1))."""
    if null.empty:
        return ""
    above = null["p_holm"] < ALPHA
    gen = null["kind"] == "gen_mean"
    floor = 1 / (n_perm + 1)
    if not above.any() and floor * len(null) > ALPHA:
        return (
            f"No alignment value can beat its permutation null after Holm correction here: the smallest p that "
            f"{n_perm} permutations can give, {floor:.3g}, times {len(null)} values exceeds {ALPHA}. Too few "
            f"permutations (`n_perm`) for this many tests; this says nothing about chance."
        )
    return (
        f"Against their permutation nulls, {int(above.sum())} of {len(null)} alignment values are above chance "
        f"after Holm correction ({int((above & gen).sum())} of {int(gen.sum())} generative ones): "
        + (
            "every kernel carries signal, so the cue comparisons compare real alignments."
            if above.all()
            else f"not above chance: {_listing(null[~above])}; a value at chance cannot show a cue effect."
        )
    )


def _listing(rows: pd.DataFrame, most: int = 4) -> str:
    names = [f"{r['cue']} {KIND_NAMES.get(r['kind'], r['kind'])} × {r['encoder']}" for r in rows.to_dict("records")]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


# ----------------------------------------------------------------------------- prose


def _fmt(x: float, signed: bool = True) -> str:
    return "–" if _missing(x) else (f"{x:+.3f}" if signed else f"{x:.3f}")


def _p(x: float) -> str:
    return "–" if _missing(x) else ("< 0.001" if x < 0.001 else f"{x:.2g}")


def _effect_text(r: Mapping) -> str:
    ci = "" if _missing(r["ci_low"]) else f" [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
    return f"{_fmt(r['effect'])}{ci}"


def caution_text(r: Mapping) -> str:
    """The cautions of one finding as one sentence fragment (empty when there are none)."""
    parts = []
    for code in filter(None, str(r.get("cautions") or "").split(";")):
        if code == "small_n":
            parts.append(CAUTIONS[code].format(n=r["n"]))
        elif code == "holm_lost":
            parts.append(CAUTIONS[code].format(p=r["p"], p_adj=r["p_adj"]))
        elif code == "below_spread":
            parts.append(CAUTIONS[code].format(spread=r["spread"]))
        elif code == "flips":
            parts.append(CAUTIONS[code].format(agree=r["agree"], settings=r["settings"]))
        else:
            parts.append(str(r.get("note") or code))
    return "; ".join(parts)


CLAIM_OUTCOMES = {
    "reproduced": "reproduced",
    "partly": "partly reproduced",
    "contradicted": "**contradicted**",
    "mixed": "**mixed**: some tests agree with the paper, others contradict it",
    "inconclusive": "not shown: in the paper's direction, but inconclusive",
    "split": "not shown: the tests point both ways, none significantly",
    "not_shown": "not shown: no effect in the paper's direction",
    "as_expected": "as the paper says (equivalent to no effect)",
    "undetermined": "undetermined: neither an effect nor its absence is shown",
    "not_as_expected": "**not as the paper says**",
    "sign_only": "in the paper's direction (a point estimate, no CI)",
    "sign_against": "against the paper's direction (a point estimate, no CI)",
    "sign_mixed": "mixed: some in the paper's direction, some against (point estimates, no CI)",
}


def claim_outcome(findings: pd.DataFrame) -> str:
    """One claim's :data:`CLAIM_OUTCOMES` code from its tests' verdicts (and signs, where there is no CI).

    Without a significant test, "in the paper's direction" needs every directional test to point that way;
    tests pointing both ways are "split", and only tests pointing away (or none with a direction) "not shown".
    """
    v = set(findings["verdict"])
    if v == {"no_ci"}:
        agree = findings["paper_sign"]
        return "sign_only" if agree.all() else "sign_against" if not agree.any() else "sign_mixed"
    v -= {"no_ci"}
    if v <= {"equivalent", "differs", "undetermined"}:
        return "not_as_expected" if "differs" in v else "as_expected" if v == {"equivalent"} else "undetermined"
    if "contradicts" in v:
        return "mixed" if "supports" in v else "contradicted"
    if v == {"supports"}:
        return "reproduced"
    if "supports" in v:
        return "partly"
    toward = findings["verdict"].isin(["weak", "direction"]).sum()
    away = findings["verdict"].isin(["opposite", "against"]).sum()
    if toward and not away:
        return "inconclusive"
    return "split" if toward and away else "not_shown"


def report(findings: pd.DataFrame, setting: str = "") -> str:
    """Markdown: per claim its outcome, the table of tests, then the contradictions and cautions in words."""
    if findings.empty:
        return "### What this shows\n\nNo paper claim can be tested with this run's tables (a cue or a modality is missing)."
    lines = ["### What this shows", ""]
    if setting:
        lines += [f"*{setting}*", ""]
    for claim, sub in findings.groupby("claim", sort=False):
        outcome = CLAIM_OUTCOMES[claim_outcome(sub)]
        tally = ", ".join(f"{n} {SHORT[v]}" for v, n in sub["verdict"].value_counts().items())
        fam = " *(confirmatory)*" if (sub["family"] == "confirmatory").all() else ""
        lines.append(f"- **{claim}**{fam} — {outcome} ({len(sub)} test{'s' * (len(sub) > 1)}: {tally}).")
    lines += [
        "",
        "| test | family | effect [95 % CI] | p | p (corrected) | paper's sign | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in findings.to_dict("records"):
        sign = "–" if r["expected"] == 0 or r["effect"] == 0 else ("yes" if r["paper_sign"] else "**no**")
        equiv = "" if r["expected"] != 0 or _missing(r["p_equiv_adj"]) else f" (equivalence p {_p(r['p_equiv_adj'])})"
        lines.append(
            f"| {r['test']} | {r['family']} | {_effect_text(r)} | {_p(r['p'])} | {_p(r['p_adj'])}{equiv} | {sign} | "
            f"{r['verdict']} |"
        )
    lines.append("")
    for r in findings.to_dict("records"):
        if r["verdict"] in ("contradicts", "differs"):
            lines.append(
                f"- **Against the paper:** {r['test']}: {_effect_text(r)}, corrected p {_p(r['p_adj'])} — {VERDICTS[r['verdict']]}."
            )
        elif r["verdict"] == "against":
            lines.append(
                f"- *Opposite to the paper, not significant after correction:* {r['test']}: {_effect_text(r)}, corrected p {_p(r['p_adj'])}."
            )
    if (findings["family"] == "confirmatory").any():
        lines.append(
            f"- Confirmatory tests are corrected together over the run's whole confirmatory family (Bonferroni); "
            f'exploratory ones by Holm within this notebook. Where the paper expects no effect, "no effect" needs '
            f"an equivalence test within ±{EQUIVALENCE_MARGIN} (two one-sided tests)."
        )
    return "\n".join(lines + _caution_lines(findings))


def run_summary(tables: Sequence[pd.DataFrame]) -> str:
    """Markdown for a whole run from its notebooks' findings tables: the confirmatory family's tests (a test
    that 07 repeats from 05 counted once) with each claim's outcome, then every exploratory claim's outcome."""
    df = (
        pd.concat([t for t in tables if not t.empty], ignore_index=True)
        if any(not t.empty for t in tables)
        else table([])
    )
    if df.empty:
        return "No paper claim can be tested with this run's tables."
    conf = df[df["family"] == "confirmatory"].drop_duplicates("test", keep="first")
    lines = [f"**Confirmatory** ({len(conf)} tests, corrected together: Bonferroni over the run's family)", ""]
    for claim, sub in conf.groupby("claim", sort=False):
        lines.append(f"- **{claim}** — {CLAIM_OUTCOMES[claim_outcome(sub)]}")
    lines += ["", "| test | effect [95 % CI] | p | corrected p | verdict |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['test']} | {_effect_text(r)} | {_p(r['p'])} | {_p(r['p_adj'])} | {r['verdict']} |"
        for r in conf.to_dict("records")
    ]
    expl = df[df["family"] == "exploratory"]
    if not expl.empty:
        lines += ["", "**Exploratory** (Holm within each notebook)", ""]
        for (nb, claim), sub in expl.groupby(["notebook", "claim"], sort=False):
            tally = ", ".join(f"{n} {SHORT[v]}" for v, n in sub["verdict"].value_counts().items())
            lines.append(f"- {nb}: {claim} — {CLAIM_OUTCOMES[claim_outcome(sub)]} ({tally})")
    return "\n".join(lines)


def _caution_lines(findings: pd.DataFrame) -> list[str]:
    """One line per distinct caution, naming the tests it applies to (or "every test")."""
    tests: dict[str, list[str]] = {}
    for r in findings.to_dict("records"):
        for code in filter(None, str(r["cautions"]).split(";")):
            tests.setdefault(caution_text({**r, "cautions": code}), []).append(r["test"])
    return [f"- *Caution* ({_which(findings, t)}): {text}." for text, t in tests.items()]


def _which(findings: pd.DataFrame, tests: Sequence[str]) -> str:
    """The tests a caution applies to: "every test", the claims all of whose tests it covers, or the tests."""
    if len(tests) == len(findings) > 1:
        return "every test"
    by_claim = findings.groupby("claim", sort=False)["test"].apply(list)
    whole = [c for c, ts in by_claim.items() if set(ts) <= set(tests)]
    if whole and sum(len(by_claim[c]) for c in whole) == len(tests) and len(tests) > 2:
        return "every test of " + "; ".join(f"“{c}”" for c in whole)
    return "; ".join(tests)
