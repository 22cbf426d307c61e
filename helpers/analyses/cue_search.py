"""Search for a better cue, validated on held-out items and corrected for the selection (notebook 14).

The paper leaves prompt optimisation open. Given a family of candidate cue templates, the items
(those the target encoder covers) are split by a stable hash of their id into a *search* half and a
*held-out* half before anything is scored. Every candidate is scored on the search half (mutual
k-NN with one chosen encoder); the best is the *winner*. Two guards keep the maximum of many noisy
scores from being reported as an effect:

1. a max-statistic test on the search half (:func:`selection_test`): under "no candidate
   differs from NONE" the candidates' differences from NONE are jointly normal around 0 with their
   dyadic-robust covariance (:mod:`helpers.metrics.knn_inference`), so the largest of draws from that
   normal is the best of K candidates by chance; its p-value is corrected for having picked the best;
2. the winner, SEE, HEAR and NONE are scored again on the held-out half, which played no part in
   the choice (an unbiased estimate of the winner's effect), paired over items.

Every generation is cached (``generate_cached``): a candidate already evaluated costs nothing, and
the paper's cues are the run's own generations (03's prefix means) where they match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from helpers import lm
from helpers.analyses.ablations import paired_alignment
from helpers.analyses.pipeline import cue_conditions
from helpers.analyses.tables import with_holm
from helpers.core.settings import DEFAULT_SETTINGS, AlignmentSettings, LMSettings
from helpers.data.artifacts import StoredRun
from helpers.data.prompts import BASELINE_CUE, build_prompts
from helpers.metrics.knn_inference import Overlaps, max_mean_null
from helpers.metrics.pairing import EncoderFeatures, encoder_spaces
from helpers.metrics.stats import p_text, score_ci

Reps = dict[str, tuple[list[str], np.ndarray]]


def split(ids: Sequence[str], held_out_share: float = 0.5, salt: str = "cue-search") -> tuple[list[str], list[str]]:
    """``(search, held_out)`` ids: an item is held out when the SHA-1 of ``salt`` + its id falls below
    ``held_out_share`` of the hash range, so the split never depends on the order, the other items or a seed."""
    if not 0 < held_out_share < 1:
        raise ValueError(f"held_out_share must be in (0, 1), got {held_out_share}")
    search, held = [], []
    for i in ids:
        h = int(hashlib.sha1(f"{salt}:{i}".encode()).hexdigest()[:12], 16) / 16**12
        (held if h < held_out_share else search).append(str(i))
    return search, held


def covered(manifest: pd.DataFrame, encoder_feats: EncoderFeatures, encoder: str) -> list[str]:
    """The manifest's items that ``encoder`` has features for (the items a search with it can use)."""
    if encoder not in encoder_feats:
        raise KeyError(
            f"search_encoder {encoder!r} has no features in this run (have {sorted(encoder_feats)}): "
            "pick one of those, or add it to vision_encoders / audio_encoders and run 04"
        )
    have = {str(i) for i in encoder_feats[encoder][1]}
    return [str(i) for i in manifest["id"] if str(i) in have]


def halves(
    manifest: pd.DataFrame, encoder_feats: EncoderFeatures, encoder: str, held_out_share: float, k: int
) -> tuple[list[str], list[str]]:
    """:func:`split` of the items ``encoder`` covers; a ValueError naming the fix when either half has no more than ``k`` items."""
    search, held = split(covered(manifest, encoder_feats, encoder), held_out_share)
    if min(len(search), len(held)) <= k:
        raise ValueError(
            f"a cue search needs more than k={k} items in each half: {encoder} covers {len(search)} search and "
            f"{len(held)} held-out items (held_out_share {held_out_share}); use more items (n_items), a "
            "smaller k, or leave notebook 14 out of this run"
        )
    return search, held


def quantile_text(null: np.ndarray, q: float = 0.95) -> str:
    """``"+0.012 (95th percentile)"``: how far the best candidate gets by chance."""
    return f"{float(np.quantile(null, q)):+.4f} ({round(100 * q)}th percentile of {len(null)} null draws)"


def winner_table(
    search: pd.DataFrame, encoder: str, corrected_p: float, observed: float, null: np.ndarray
) -> pd.DataFrame:
    """One row: the winner (``cue``, ``template``), the encoder it was chosen for, its search-half score and
    advantage over NONE, the selection-corrected p and the chance level of the best advantage (95th percentile)."""
    w = search.iloc[0]
    return pd.DataFrame(
        [
            {
                "cue": w["cue"],
                "template": w["template"],
                "encoder": encoder,
                "n_search_items": int(w["n_items"]),
                "search_score": float(w["score"]),
                "best_minus_none": float(observed),
                "chance_best_minus_none_95": float(np.quantile(null, 0.95)),
                "corrected_p": float(corrected_p),
                "n_draws": int(len(null)),
                "n_candidates": len(search) - 1,
            }
        ]
    )


def candidate_representations(
    model: lm.LLM,
    manifest: pd.DataFrame,
    cues: Mapping[str, str],
    stored: StoredRun,
    *,
    ids: Sequence[str],
    T: int,
    lm_settings: LMSettings,
    first_layer: int = 0,
) -> tuple[Reps, pd.DataFrame]:
    """Every cue's representation on ``ids`` (``name -> (ids, [items, hidden])``) and where each came from."""
    table = build_prompts(manifest[manifest["id"].isin(set(ids))], cues)
    conds = cue_conditions(model, table, cues, stored, T=T, lm_settings=lm_settings, first_layer=first_layer)
    reps, rows = {}, []
    for cue, cond in conds.items():
        reps[cue] = (cond.ids, cond.vector)
        rows.append(
            {
                "cue": cue,
                "template": cues[cue],
                "n_items": len(cond.ids),
                "source": "the run's generations" if cond.stored_key else "generated (cached)",
            }
        )
    return reps, pd.DataFrame(rows)


def per_item_overlaps(
    reps: Reps, encoder_feats: EncoderFeatures, encoder: str, settings: AlignmentSettings
) -> dict[str, Overlaps]:
    """Cue → its :class:`~helpers.metrics.knn_inference.Overlaps` with ``encoder`` on the items every cue covers (one graph)."""
    ids = [str(i) for i in next(iter(reps.values()))[0]]
    for other, _ in reps.values():
        have = {str(i) for i in other}
        ids = [i for i in ids if i in have]
    (space,) = encoder_spaces(ids, {encoder: encoder_feats[encoder]}, settings.quantile)
    space.require(settings.k, f"the cue search on {encoder}")
    cols = {}
    for cue, (cue_ids, x) in reps.items():
        pos = {str(i): j for j, i in enumerate(cue_ids)}
        cols[cue] = space.overlaps(np.asarray(x)[[pos[i] for i in ids]], settings.k)  # rows in ``ids`` order
    return cols


def selection_test(
    overlaps: Mapping[str, Overlaps], n_draws: int = 10000, seed: int = 0
) -> tuple[float, np.ndarray, float]:
    """``(observed, null, p)`` of the best candidate's difference from NONE, corrected for picking the best.

    Every candidate's contrast with NONE on the search half, jointly normal with the dyadic-robust
    covariance (:func:`helpers.metrics.knn_inference.max_mean_null`): the null of the largest mean difference
    when no candidate differs from NONE, ``n_draws`` seeded draws; ``p = (1 + #null >= observed) / (1 + n_draws)``.
    """
    contrasts = [ov - overlaps[BASELINE_CUE] for cue, ov in overlaps.items() if cue != BASELINE_CUE]
    return max_mean_null(contrasts, n_draws=n_draws, seed=seed)


def search_table(overlaps: Mapping[str, Overlaps], templates: Mapping[str, str]) -> pd.DataFrame:
    """One row per candidate on the search half: ``score`` with its CI (:func:`helpers.metrics.stats.score_ci`),
    ``vs_none`` (mean paired difference from NONE), ``rank`` (1 = the winner) and its template."""
    rows = []
    for cue, ov in overlaps.items():
        lo, hi = score_ci(ov)
        rows.append(
            {
                "cue": cue,
                "template": templates[cue],
                "n_items": ov.n,
                "score": ov.mean(),
                "ci_low": lo,
                "ci_high": hi,
                "vs_none": (ov - overlaps[BASELINE_CUE]).mean(),
            }
        )
    out = pd.DataFrame(rows).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def held_out_effects(
    reps: Reps, winner: str, encoder_feats: EncoderFeatures, settings: AlignmentSettings = DEFAULT_SETTINGS
) -> pd.DataFrame:
    """On the held-out half: the winner against each other cue (NONE and the paper's), every encoder,
    paired over items (:func:`helpers.analyses.ablations.paired_alignment`, Holm over the table). An encoder
    with no more than k held-out items is left out, named in ``attrs["left_out"]``."""
    ids = {str(i) for i in reps[winner][0]}
    usable = {e: f for e, f in encoder_feats.items() if len(ids & {str(i) for i in f[1]}) > settings.k}
    rows = [paired_alignment(reps, {winner: b}, usable, settings=settings) for b in reps if b != winner]
    out = with_holm(pd.concat(rows, ignore_index=True)) if rows else pd.DataFrame()
    out.attrs["left_out"] = [
        f"{e}: {len(ids & {str(i) for i in f[1]})} held-out items, need more than k={settings.k}"
        for e, f in encoder_feats.items()
        if e not in usable
    ]
    return out


def conclusion(search: pd.DataFrame, corrected_p: float, held: pd.DataFrame, encoder: str, n_perm: int) -> str:
    """Markdown from the numbers: the winner, its search-half advantage and selection-corrected p,
    and what holds on the held-out half against NONE and the paper's matched cue."""
    win = search.iloc[0]
    lines = [
        f"Searched {len(search)} cues on {int(win['n_items'])} items with **{encoder}**; the best is "
        f"**{win['cue']}** (`{win['template']}`): {win['score']:.3f} [{win['ci_low']:.3f}, {win['ci_high']:.3f}], "
        f"{win['vs_none']:+.3f} over NONE on the search half. Corrected for picking the best of {len(search) - 1} "
        f"candidates against NONE (the largest of their jointly distributed differences, {n_perm} draws): p = {p_text(corrected_p, n_perm)}."
    ]
    if win["cue"] == BASELINE_CUE:
        lines.append("NONE itself scores best: no candidate cue beats having no cue.")
        return "\n\n".join(lines)
    sub = held[held["encoder"] == encoder]
    for _, r in sub.iterrows():
        ci = f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] (Holm p {r['p_holm']:.2g})"
        lines.append(f"- held out ({int(r['n_items'])} items), {r['condition']} − {r['baseline']}: {ci}")
    vs_none = sub[sub["baseline"] == BASELINE_CUE]
    holds = bool(len(vs_none)) and vs_none.iloc[0]["diff"] > 0 and vs_none.iloc[0]["p_holm"] < 0.05
    shrink = f" (it was {win['vs_none']:+.3f} on the search half)" if len(vs_none) else ""
    selected = corrected_p < 0.05
    if holds and selected:
        verdict = "**The winner beats NONE on items it was not chosen on.**"
    elif selected:
        verdict = (
            "**Not shown to generalise**: the best candidate is above the best-of-noise level on the search half "
            "(selection-corrected p < 0.05), but on the held-out half it is not above NONE after Holm."
        )
    elif holds:
        verdict = (
            "**Not shown**: on the held-out half the winner is above NONE after Holm, but its search-half lead is "
            "within what the best of the candidates reaches by chance (selection-corrected p ≥ 0.05)."
        )
    else:
        verdict = (
            "**The winner's advantage over NONE does not hold up**: its search-half lead is within what the best of "
            "the candidates reaches by chance, and on the held-out half it is not above NONE after Holm."
        )
    lines.append(f"{verdict} Held-out − NONE {vs_none.iloc[0]['diff']:+.3f}{shrink}." if len(vs_none) else verdict)
    return "\n".join([lines[0], "", *lines[1:]])


def saved_winner(run) -> tuple[str, str, str]:
    """``(cue, template, line)`` of notebook 14's winner for ``run`` (a :class:`~helpers.data.artifacts.RunPaths`),
    ``line`` saying what it was chosen for; FileNotFoundError naming notebook 14 when it has not run."""
    table = run.read_results("cue_search_winner")
    if table is None or table.empty:
        raise FileNotFoundError(
            f"no cue search for run {run.name!r}: run notebook 14_cue_search first "
            f"(python -m helpers.run.runner --profile <profile> --only 14)"
        )
    w = table.iloc[0]
    line = (
        f"chosen for {w['encoder']} on {int(w['n_search_items'])} search items among {int(w['n_candidates'])} "
        f"candidates, selection-corrected p = {p_text(float(w['corrected_p']), int(w.get('n_draws', 0)) or None)}"
    )
    return str(w["cue"]), str(w["template"]), line


__all__ = [
    "candidate_representations",
    "conclusion",
    "covered",
    "held_out_effects",
    "selection_test",
    "halves",
    "per_item_overlaps",
    "quantile_text",
    "saved_winner",
    "search_table",
    "split",
    "winner_table",
]
