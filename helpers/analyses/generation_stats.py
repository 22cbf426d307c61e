"""How long a run's generations are per cue (notebook 02's table): EOS rates, tokens generated, and the notes that
say when generation length confounds a cue comparison (02) or a point of the length curve (06).

A cue whose generations often stop at EOS has generative means over fewer tokens: a difference between the cues
besides their words. :mod:`helpers.analyses.findings` reads the summary table for its EOS caution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def generation_lengths(
    gens: pd.DataFrame, ids: Sequence[str], cues: Sequence[str]
) -> tuple[dict[str, np.ndarray], int]:
    """From 02's table: per cue the generated tokens of each item in ``ids`` order, and the longest
    generation (where :func:`helpers.analyses.tables.length_curve` places ``gen_mean``)."""
    lengths = gens.set_index(["cue", "id"])["n_gen_tokens"]
    return {cue: lengths.loc[cue].reindex(ids).to_numpy() for cue in cues}, int(gens["n_gen_tokens"].max())


def generation_length_summary(gens: pd.DataFrame) -> pd.DataFrame:
    """Per cue of 02's table (in its order): ``n_items``, ``max_new_tokens`` (T), ``eos_rate`` (the share
    of generations that stopped at EOS, i.e. before T), ``mean_tokens`` / ``median_tokens`` / ``min_tokens``
    generated and ``mean_fraction_of_T``. A cue whose generations often stop early has generative means
    over fewer tokens: a difference between the cues besides their words (:func:`length_confound_note`)."""
    if gens.empty:
        raise ValueError("no generations: run 02_generation first")
    rows = []
    for cue, sub in gens.groupby("cue", sort=False):
        n, T = sub["n_gen_tokens"].astype(float), int(sub["max_new_tokens"].max())
        rows.append(
            {
                "cue": cue,
                "n_items": len(sub),
                "max_new_tokens": T,
                "eos_rate": float(sub["stopped_at_eos"].astype(bool).mean()),
                "mean_tokens": float(n.mean()),
                "median_tokens": float(n.median()),
                "min_tokens": int(n.min()),
                "mean_fraction_of_T": float(n.mean() / T) if T else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def length_confound_note(summary: pd.DataFrame, min_gap: float = 0.10) -> str:
    """One line on :func:`generation_length_summary`: the cues with the highest and the lowest EOS rate,
    and whether they differ by ``min_gap`` or more (then the cue with more early stops has its
    generative mean over fewer tokens on average: generation length confounds the comparison)."""
    if len(summary) < 2:
        return f"one cue only ({', '.join(map(str, summary['cue']))}): no cue comparison to confound"
    s = summary.set_index("cue")
    hi, lo, T = s["eos_rate"].idxmax(), s["eos_rate"].idxmin(), int(s["max_new_tokens"].max())
    if s.at[hi, "eos_rate"] == s.at[lo, "eos_rate"]:
        return f"every cue stopped at EOS in {s.at[hi, 'eos_rate']:.0%} of its generations: generation length does not differ between the cues by EOS"
    facts = (
        f"{hi} stopped at EOS in {s.at[hi, 'eos_rate']:.0%} of its generations against {s.at[lo, 'eos_rate']:.0%} "
        f"for {lo} (mean {s.at[hi, 'mean_tokens']:.1f} vs {s.at[lo, 'mean_tokens']:.1f} tokens of T = {T})"
    )
    if s.at[hi, "eos_rate"] - s.at[lo, "eos_rate"] >= min_gap:
        return f"length confound: {facts}; {hi}'s generative means average fewer tokens, so part of a {hi} vs {lo} difference can come from length"
    return f"EOS rates differ by less than {min_gap:.0%} across cues: {facts}; generation length hardly differs between the cues"


def length_curve_notes(curve: pd.DataFrame, summary: pd.DataFrame, often: float = 0.10) -> list[str]:
    """One line per cue beside 06's length curve: its EOS rate (:func:`generation_length_summary`) and
    ``frac_shorter`` at each T > 0 of ``curve`` (:func:`helpers.analyses.tables.length_curve`; the encoder covering the most
    items), saying whether that cue's long-T points average fewer tokens than T (``often`` or more ended early)."""
    eos = summary.set_index("cue")["eos_rate"]
    points = curve[curve["T"] > 0].dropna(subset=["frac_shorter"])
    if points.empty:
        return ["no generation lengths in this curve (frac_shorter is empty)"]
    lines, widest = [], points.loc[points["n_items"].idxmax(), "encoder"]
    for cue, sub in points[points["encoder"] == widest].groupby("cue", sort=False):
        by_T = sub.drop_duplicates("T").sort_values("T")
        shares = ", ".join(f"T={t}: {f:.0%}" for t, f in zip(by_T["T"], by_T["frac_shorter"]))
        rate = f"{eos[cue]:.0%} of generations stopped at EOS" if cue in eos.index else "EOS rate unknown"
        verdict = (
            "its long-T points average fewer tokens than T (an item that ended counts its whole, shorter generation)"
            if by_T["frac_shorter"].iloc[-1] >= often
            else "its long-T points average close to T tokens"
        )
        lines.append(f"{cue}: {rate}; ended before T ({shares}): {verdict}")
    return lines
