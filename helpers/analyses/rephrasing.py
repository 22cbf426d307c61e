"""How much trivial rephrasing moves the numbers: the paper's cues in meaning-preserving variants (notebook 13).

Each :class:`Variant` changes the paper's prompts in one way that should not matter: the final
full stop of the template dropped, the caption's first letter capitalised, ``"Imagine:"`` written
``"Imagine that"``, or the system prompt the chat template injects on its own (SmolLM2's "You are a
helpful AI assistant named SmolLM …") replaced by an empty one. A variant that leaves a cue's prompt
unchanged reuses the paper's representation of that cue, so every variant is a whole cue set.

For each matched comparison (SEE − NONE on a vision encoder, HEAR − NONE on an audio one) the
notebook sets the paper's effect beside its range over the variants, and treats the rephrasings as
a random factor (:func:`random_factor`): the effect's mean over the variants with an interval that
includes the between-variant variance, and a test of the cue × variant interaction (does the effect
depend on the wording?). :func:`conclusion` reads its verdict from those two tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers import lm
from helpers.analyses.ablations import paired_alignment
from helpers.analyses.findings import llm_cue_pairs
from helpers.analyses.pipeline import condition_representation, cue_representations
from helpers.analyses.tables import with_holm
from helpers.core.settings import DEFAULT_SETTINGS, AlignmentSettings, LMSettings
from helpers.data.artifacts import StoredRun
from helpers.data.prompts import BASELINE_CUE, MATCHED_CUE, build_prompts
from helpers.lm import Decoding

#: the variant every other is compared with
PAPER = "as in the paper"

Reps = dict[str, tuple[list[str], np.ndarray]]


@dataclass(frozen=True)
class Variant:
    """One meaning-preserving change: ``templates`` (cue → template, only the cues it changes, or all
    when ``capitalise`` / ``system`` change every prompt), ``capitalise`` (caption's first letter),
    ``system`` (None: the chat template's own default; a string: an explicit system message)."""

    name: str
    templates: Mapping[str, str]
    capitalise: bool = False
    system: str | None = None


def _no_period(template: str) -> str:
    return template[:-1] if template.endswith(".") else template


def variants(cues: Mapping[str, str], injected_system: str | None) -> list[Variant]:
    """The paper's cue set and its trivial rephrasings that apply to ``cues``.

    ``injected_system``: what the model's chat template adds as system prompt on its own
    (:func:`helpers.lm.template_system_prompt`); the "no system prompt" variant exists only then.
    """
    out = [Variant(PAPER, dict(cues))]
    dropped = {c: _no_period(t) for c, t in cues.items() if t.endswith(".")}
    if dropped:
        out.append(Variant("no final full stop", dropped))
    out.append(Variant("caption capitalised", dict(cues), capitalise=True))
    that = {c: t.replace("Imagine:", "Imagine that", 1) for c, t in cues.items() if t.startswith("Imagine:")}
    if that:
        out.append(Variant('"Imagine that" for "Imagine:"', that))
    if injected_system:
        out.append(Variant("empty system prompt", dict(cues), system=""))
    return out


def key(variant: str, cue: str) -> str:
    """``"<variant>|<cue>"``, the name of a representation."""
    return f"{variant}|{cue}"


def _capitalised(manifest: pd.DataFrame) -> pd.DataFrame:
    caps = manifest["caption"].astype(str).map(lambda c: c[:1].upper() + c[1:])
    return manifest.assign(caption=caps)


def variant_representations(
    model: lm.LLM,
    manifest: pd.DataFrame,
    cues: Mapping[str, str],
    stored: StoredRun,
    *,
    T: int,
    lm_settings: LMSettings,
    first_layer: int = 0,
) -> tuple[Reps, pd.DataFrame]:
    """Every variant's representation of every cue on ``manifest``'s items, and what each cost.

    The paper's cues come from the run (03's prefix means at ``T``, :func:`helpers.analyses.pipeline.condition_representation`)
    when it has them, else are generated; each variant generates only the prompts it changes and
    reuses the paper's representation for the others. Returns ``"<variant>|<cue>" -> (ids, [items,
    hidden])`` for every variant and cue, and one row per (variant, cue): ``source`` (``stored``,
    ``generated`` or ``the paper's``) and an example prompt.
    """
    ids = list(manifest["id"])
    reps: Reps = {}
    rows = []
    for v in variants(cues, lm.template_system_prompt(model.tokenizer, **model.chat_template_kwargs)):
        items = _capitalised(manifest) if v.capitalise else manifest
        for cue, template in cues.items():
            tpl = v.templates.get(cue, template)
            if (
                v.name != PAPER and tpl == template and not v.capitalise and v.system is None
            ):  # this prompt is the paper's
                reps[key(v.name, cue)] = reps[key(PAPER, cue)]
                rows.append({"variant": v.name, "cue": cue, "source": "the paper's", "prompt": ""})
                continue
            user = list(build_prompts(items, {cue: tpl})["user_text"])
            if v.name == PAPER:  # the run's own generations where they match, else generated
                cond = condition_representation(
                    model,
                    stored,
                    cue=cue,
                    template=tpl,
                    ids=ids,
                    user_texts=user,
                    decoding=Decoding(max_new_tokens=T),
                    lm_settings=lm_settings,
                    first_layer=first_layer,
                )
                reps[key(v.name, cue)] = (cond.ids, cond.vector)
                source = "stored" if cond.stored_key else "generated"
            else:  # a variant's prompt: same template text is no proof of the same prompt (capitals, system prompt)
                res = cue_representations(
                    model,
                    ids,
                    user,
                    Decoding(max_new_tokens=T),
                    lm_settings=lm_settings,
                    system=v.system,
                )
                reps[key(v.name, cue)] = (res.ids, res.vector("gen_mean", first_layer))
                source = "generated"
            rows.append(
                {
                    "variant": v.name,
                    "cue": cue,
                    "source": source,
                    "prompt": lm.format_prompt(model, user[0], system=v.system),
                }
            )
    return reps, pd.DataFrame(rows)


def effects(reps: Reps, encoder_feats, settings: AlignmentSettings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """Cue − NONE within each variant, paired over items (Holm over the table); ``variant``, ``cue``,
    ``comparison``, ``matched`` added to :func:`helpers.analyses.ablations.paired_alignment`'s columns."""
    out = with_holm(paired_alignment(reps, llm_cue_pairs(list(reps)), encoder_feats, settings=settings))
    out["variant"] = [c.rsplit("|", 1)[0] for c in out["condition"]]
    out["cue"] = [c.rsplit("|", 1)[1] for c in out["condition"]]
    out["comparison"] = [f"{c}-{BASELINE_CUE}" for c in out["cue"]]
    out["matched"] = [MATCHED_CUE.get(m) == c for m, c in zip(out["modality"], out["cue"])]
    return out


def spread(alignment: pd.DataFrame, effect_table: pd.DataFrame) -> pd.DataFrame:
    """Per matched (comparison, encoder): the paper's effect and CI, and how far the variants move things.

    ``alignment``: per-representation scores with ``variant``, ``cue``, ``encoder``;
    ``effect_table``: :func:`effects`. Columns: ``paper_effect`` (+ CI, Holm p), ``effect_min`` /
    ``effect_max`` over the variants, ``sign_flips`` (variants whose effect has the other sign),
    ``significant`` (variants whose effect's Holm p < 0.05) of ``n_variants``, and
    ``score_range``: the largest range of one cue's alignment over the variants (the cue's or NONE's).
    """
    rows = []
    matched = effect_table[effect_table["matched"].astype(bool)]
    for (comp, enc), sub in matched.groupby(["comparison", "encoder"], sort=False):
        paper = sub[sub["variant"] == PAPER]
        if paper.empty:
            continue
        p = paper.iloc[0]
        cue = p["cue"]
        scores = alignment[(alignment["encoder"] == enc) & alignment["cue"].isin([cue, BASELINE_CUE])]
        ranges = scores.groupby("cue")["score"].agg(lambda s: float(s.max() - s.min()))
        rows.append(
            {
                "comparison": comp,
                "encoder": enc,
                "modality": p["modality"],
                "n_items": int(p["n_items"]),
                "paper_effect": p["diff"],
                "paper_ci_low": p["ci_low"],
                "paper_ci_high": p["ci_high"],
                "paper_p_holm": p["p_holm"],
                "effect_min": float(sub["diff"].min()),
                "effect_max": float(sub["diff"].max()),
                "sign_flips": int((np.sign(sub["diff"]) != np.sign(p["diff"])).sum()),
                "significant": int((sub["p_holm"] < 0.05).sum()),
                "n_variants": len(sub),
                "score_range": float(ranges.max()),
                "score_range_cue": str(ranges.idxmax()),
            }
        )
    return pd.DataFrame(rows)


def random_factor(reps: Reps, encoder_feats, settings: AlignmentSettings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """The rephrasings as a random factor: per matched (comparison, encoder), the cue effect averaged over the
    variants with an interval that includes the variance *between* variants, and the cue × variant interaction.

    Columns: ``n_variants``, ``n_items``; ``mean_effect`` (the mean over the variants of cue − NONE, one
    contrast on the items every variant covers); ``se_items`` (its dyadic-robust error over items),
    ``between_sd`` (the variants' effects' standard deviation) and ``between_extra_sd`` (τ: what of it the
    items' noise does not explain, by moments), ``se`` = √(se_items² + τ² / V), ``df`` (Satterthwaite),
    ``ci_low``/``ci_high`` and ``p_value`` (what a new rephrasing of these prompts, on new items, would show); ``interaction_chi2`` / ``interaction_df`` / ``interaction_p``: a Wald
    test that all V effects are equal, with their joint dyadic covariance (the effects share items), read
    as Hotelling's F since that covariance is estimated on :func:`~helpers.metrics.knn_inference.effective_df`
    degrees of freedom.
    """
    from scipy import stats as sp

    from helpers.metrics.knn_inference import effective_df, sampling_covariance, standard_error
    from helpers.metrics.pairing import common_rows, encoder_spaces

    names = list(dict.fromkeys(key.rsplit("|", 1)[0] for key in reps))
    ids = [str(i) for i in next(iter(reps.values()))[0]]
    for got, _ in reps.values():
        ids, _, _ = common_rows(ids, got)
    rows = []
    for space in encoder_spaces(ids, encoder_feats, settings.quantile):
        cue = MATCHED_CUE.get(space.modality)
        have = [v for v in names if key(v, cue) in reps and key(v, BASELINE_CUE) in reps]
        if cue is None or len(have) < 2:
            continue
        space.require(settings.k, f"the rephrasings of {cue}")

        def ov(name, space=space):
            got_ids, x = reps[name]
            pos = {str(i): j for j, i in enumerate(got_ids)}
            return space.overlaps(np.asarray(x)[[pos[i] for i in ids]], settings.k)

        contrasts = [ov(key(v, cue)) - ov(key(v, BASELINE_CUE)) for v in have]
        V = len(contrasts)
        d = np.array([c.mean() for c in contrasts])
        mean = contrasts[0]
        for c in contrasts[1:]:
            mean = mean + c
        mean = mean * (1.0 / V)
        se_items, between = standard_error(mean), float(d.std(ddof=1))
        cov = sampling_covariance(contrasts)
        centre = np.eye(V) - 1.0 / V
        x, cx = centre @ d, centre @ cov @ centre
        # between-variant variance beyond what the items' noise alone spreads the variants by (moments)
        tau2 = max(0.0, between**2 - float(np.trace(cx)) / (V - 1))
        se = float(np.sqrt(se_items**2 + tau2 / V))
        df_items = effective_df(space.n)
        df = (se**4 / (se_items**4 / df_items + (tau2 / V) ** 2 / (V - 1))) if se > 0 else df_items  # Satterthwaite
        half = float(sp.t.ppf(0.975, df)) * se
        chi2 = float(x @ np.linalg.pinv(cx, rcond=1e-10) @ x)
        # Hotelling: the covariance is estimated on df_items degrees of freedom
        dfd = max(1.0, df_items - (V - 1) + 1)
        f_stat = chi2 * dfd / (df_items * (V - 1))
        rows.append(
            {
                "comparison": f"{cue}-{BASELINE_CUE}",
                "encoder": space.name,
                "modality": space.modality,
                "n_items": space.n,
                "n_variants": V,
                "mean_effect": float(d.mean()),
                "se_items": se_items,
                "between_sd": between,
                "between_extra_sd": float(np.sqrt(tau2)),
                "se": se,
                "df": float(df),
                "ci_low": float(d.mean()) - half,
                "ci_high": float(d.mean()) + half,
                "p_value": float(2 * sp.t.sf(abs(d.mean()) / se, df)) if se > 0 else float(d.mean() == 0),
                "interaction_chi2": chi2,
                "interaction_df": V - 1,
                "interaction_p": float(sp.f.sf(f_stat, V - 1, dfd)),
            }
        )
    return pd.DataFrame(rows)


def verdict(r: Mapping) -> str:
    """From a :func:`random_factor` row: does the effect depend on the rephrasing, and does it hold across them?"""
    if r["interaction_p"] < 0.05:
        return "depends on the rephrasing (cue × variant interaction, p < 0.05)"
    if r["ci_low"] > 0 or r["ci_high"] < 0:
        return "holds across rephrasings (its mean over them excludes 0)"
    return "not shown across rephrasings (its mean over them, with their spread, includes 0)"


def conclusion(table: pd.DataFrame, factor: pd.DataFrame) -> str:
    """Markdown, computed from :func:`spread`'s and :func:`random_factor`'s tables: per matched comparison,
    the paper's effect, the variants' range, the effect as a random factor over the rephrasings, and a verdict."""
    if table.empty or factor.empty:
        return "No matched comparison (SEE on a vision encoder, HEAR on an audio one) to judge."
    lines = []
    merged = table.merge(factor, on=["comparison", "encoder"], suffixes=("", "_rf"))
    for _, r in merged.iterrows():
        lines.append(
            f"- **{r['comparison']} on {r['encoder']}** ({r['n_items']} items): with the paper's prompts "
            f"{r['paper_effect']:+.3f} [{r['paper_ci_low']:+.3f}, {r['paper_ci_high']:+.3f}]; over {r['n_variants']} "
            f"variants it runs from {r['effect_min']:+.3f} to {r['effect_max']:+.3f} (other sign in {r['sign_flips']}). "
            f"As a random factor: mean {r['mean_effect']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] "
            f"(between-variant s.d. {r['between_sd']:.3f}, items {r['se_items']:.3f}); cue × variant interaction "
            f"χ² = {r['interaction_chi2']:.1f} on {int(r['interaction_df'])} df, p = {r['interaction_p']:.2g}. "
            f"**{verdict(r)}**."
        )
    counts = pd.Series([verdict(r).split(" (")[0] for _, r in merged.iterrows()]).value_counts()
    head = f"Over {len(merged)} matched effects: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."
    return "\n".join([head, "", *lines])


__all__ = [
    "PAPER",
    "Variant",
    "conclusion",
    "effects",
    "key",
    "random_factor",
    "spread",
    "variant_representations",
    "verdict",
    "variants",
]
