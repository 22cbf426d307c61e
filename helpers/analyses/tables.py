"""A run's representations and encoder features → tidy result tables for the ablation notebooks.

Inputs are what notebooks 03 and 04 saved:

- ``ids, reps = load_arrays(run.representations)``: ``reps["SEE/gen_mean"]`` etc. are
  ``[items, layers, hidden]`` per-layer means (``gen_mean``: over generated tokens,
  ``prompt_last`` / ``prompt_mean``: the single-pass baselines, ``prefix_T<t>``: over the first
  t generated tokens of the same generation);
- ``encoder_feats, absent = load_encoder_features(run, vision, audio)``: ``name -> (modality, ids, features)``.

Every function pairs items through :class:`helpers.metrics.pairing.EncoderSpace` (an audio encoder covers only
the items with a sound; each encoder's neighbourhoods are computed once per k) and returns a
:class:`pandas.DataFrame` with one row per value. Encoders that are absent from ``encoder_feats``
simply do not appear (single-modality runs).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from helpers.core.settings import DEFAULT_SETTINGS, AlignmentSettings
from helpers.data import prompts
from helpers.metrics import alignment
from helpers.metrics.alignment import overlap_from_knn
from helpers.metrics.pairing import EncoderFeatures, EncoderSpace, encoder_spaces, usable
from helpers.metrics.stats import (
    holm,
    null_overlaps,
    null_summary,
    paired_difference,
    score_ci,
    stars,
)

KIND_LABELS = {
    "gen_mean": "generative",
    "prompt_last": "single-pass (last prompt token)",
    "prompt_mean": "single-pass (prompt mean)",
}
DEFAULT_PAIRS = (("SEE", "NONE"), ("HEAR", "NONE"), ("SEE", "HEAR"))
_PREFIX = re.compile(r"^prefix_T(\d+)$")


# ----------------------------------------------------------------------------- inputs


def split_key(key: str) -> tuple[str, str]:
    """``"SEE/gen_mean"`` → ``("SEE", "gen_mean")``."""
    cue, sep, kind = key.partition("/")
    if not sep or not cue or not kind:
        raise ValueError(f"representation key {key!r} is not '<cue>/<kind>' (as notebook 03 saves them)")
    return cue, kind


def cues_of(reps: Mapping[str, np.ndarray]) -> list[str]:
    """The cues in ``reps``, in saved order."""
    return list(dict.fromkeys(split_key(key)[0] for key in reps))


def prefix_lengths_of(reps: Mapping[str, np.ndarray]) -> list[int]:
    """The prefix lengths T with a ``<cue>/prefix_T<T>`` array for every cue, ascending."""
    per_cue = [
        {int(m.group(1)) for key in reps if split_key(key)[0] == cue and (m := _PREFIX.match(split_key(key)[1]))}
        for cue in cues_of(reps)
    ]
    return sorted(set.intersection(*per_cue)) if per_cue else []


def _get(reps: Mapping[str, np.ndarray], cue: str, kind: str) -> np.ndarray:
    key = f"{cue}/{kind}"
    if key not in reps:
        have = sorted({split_key(k)[1] for k in reps})
        raise KeyError(f"no representation {key!r} in this run (kinds: {have}); rerun 03_representations")
    return reps[key]


def _base(t: EncoderSpace, k: int | None) -> dict:
    return {"encoder": t.name, "modality": t.modality, "n_items": t.n, "k": k}


def kind_vectors(
    ids: Sequence[str], reps: Mapping[str, np.ndarray], first_layer: int = 0
) -> dict[str, tuple[list[str], np.ndarray]]:
    """The layer means of the generative and single-pass arrays (:data:`KIND_LABELS`), as
    :func:`alignment_table` takes them: ``"<cue>/<kind>" -> (ids, [items, hidden])``. The
    ``prefix_T<t>`` arrays (the generation-length ablation) are left to :func:`length_curve`."""
    return {
        key: (list(ids), alignment.layer_mean(arr, first_layer))
        for key, arr in reps.items()
        if split_key(key)[1] in KIND_LABELS
    }


# ----------------------------------------------------------------------------- checks on the inputs


def encoder_agreement(features: Mapping[str, tuple[Sequence[str], np.ndarray]], k: int = 10) -> pd.DataFrame:
    """Mutual k-NN between every pair of encoders over the items both cover (notebook 04's check).

    ``features``: name → (ids, ``[items, dims]``). Two encoders of one modality should agree far
    above chance; encoders of different modalities (one image and one sound per item) much less.
    k is lowered to ``n_items - 1`` for pairs with few shared items. One row per pair: ``a``,
    ``b``, ``n_items``, ``k``, ``mutual_knn``, ``chance``.
    """
    names, rows = list(features), []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ia, ib = alignment.match_rows(list(features[a][0]), list(features[b][0]))
            k_ab = min(k, len(ia) - 1)
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "n_items": len(ia),
                    "k": k_ab,
                    "mutual_knn": alignment.mutual_knn(features[a][1][ia], features[b][1][ib], k=k_ab),
                    "chance": alignment.mutual_knn_chance(len(ia), k_ab),
                }
            )
    return pd.DataFrame(rows, columns=["a", "b", "n_items", "k", "mutual_knn", "chance"])


def layer_norms(arrays: Mapping[str, np.ndarray], kind: str = "gen_mean") -> pd.DataFrame:
    """Mean hidden-state norm per cue and layer of the ``kind`` arrays (notebook 03's check).

    ``arrays``: ``"<cue>/<kind>" -> [items, layers, hidden]``. The norm of each item's layer
    vector, averaged over items; one row per (``cue``, ``layer``) with ``norm``. A final-norm layer
    shows as a step at the last index (the layer mean then weighs that layer differently).
    """
    return pd.DataFrame(
        [
            {"cue": split_key(key)[0], "layer": layer, "norm": float(np.linalg.norm(arr[:, layer], axis=-1).mean())}
            for key, arr in arrays.items()
            if split_key(key)[1] == kind
            for layer in range(arr.shape[1])
        ]
    )


# ----------------------------------------------------------------------------- tables


def alignment_table(
    llm_reps: dict[str, tuple[list[str], np.ndarray]],
    encoder_feats: dict[str, tuple[str, list[str], np.ndarray]],
    *,
    settings: AlignmentSettings = DEFAULT_SETTINGS,
) -> pd.DataFrame:
    """Mutual k-NN for every (LLM representation, encoder) pair over their shared items.

    ``llm_reps``: name → (ids, features); ``encoder_feats``: name → (modality, ids, features).
    Returns one row per pair with the score, its CI (:func:`helpers.metrics.stats.score_ci`) and the chance level.
    """
    k, q = settings.k, settings.quantile
    rows = []
    spaces: dict[tuple[str, ...], list[EncoderSpace]] = {}  # the encoder side, once per id list
    for rep_name, (rep_ids, rep) in llm_reps.items():
        key = tuple(map(str, rep_ids))
        if key not in spaces:
            spaces[key] = encoder_spaces(key, encoder_feats, q)
        for space in spaces[key]:
            space.require(k, rep_name)
            per_item = space.overlaps(rep, k)
            low, high = score_ci(per_item)
            rows.append(
                {
                    "representation": rep_name,
                    "encoder": space.name,
                    "modality": space.modality,
                    "n_items": space.n,
                    "k": k,
                    "score": float(per_item.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "chance": space.chance(k),
                }
            )
    return pd.DataFrame(rows)


def length_curve(
    ids: Sequence[str],
    reps: Mapping[str, np.ndarray],
    encoder_feats: EncoderFeatures,
    *,
    gen_lengths: Mapping[str, np.ndarray] | None = None,
    full_T: int | None = None,
    settings: AlignmentSettings = DEFAULT_SETTINGS,
) -> pd.DataFrame:
    """Alignment against generation length T, per cue × encoder.

    T = 0 is the single pass over the prompt (``representation`` ``prompt_last``, and
    ``prompt_mean`` beside it); T = t uses the mean over the first t generated tokens
    (``prefix``, from the ``prefix_T<t>`` arrays); the full generation (``gen_mean``) is placed at
    ``full_T`` (default: the longest generation in ``gen_lengths``). Prefixes with t ≥ ``full_T``
    are left out (they equal ``gen_mean``). ``gen_lengths``: cue → generated tokens per item in
    ``ids`` order; it gives ``frac_shorter``, the fraction of items whose generation ended before T
    (their prefix mean is their full mean).
    """
    k, q, first_layer = settings.k, settings.quantile, settings.first_layer
    if full_T is None:
        if not gen_lengths:
            raise ValueError("length_curve needs full_T (the max generation length) or gen_lengths to infer it")
        full_T = int(max(np.max(v) for v in gen_lengths.values()))
    prefixes = [t for t in prefix_lengths_of(reps) if t < full_T]
    rows = []
    for target in usable(encoder_spaces(ids, encoder_feats, q), k, "length_curve"):
        for cue in cues_of(reps):
            points = [(0, "prompt_last", "prompt_last"), (0, "prompt_mean", "prompt_mean")]
            points += [(t, "prefix", f"prefix_T{t}") for t in prefixes] + [(full_T, "gen_mean", "gen_mean")]
            lengths = None if gen_lengths is None or cue not in gen_lengths else np.asarray(gen_lengths[cue])
            for T, label, kind in points:
                per_item = target.overlaps(alignment.layer_mean(_get(reps, cue, kind), first_layer), k)
                low, high = score_ci(per_item)
                shorter = float(np.mean(lengths[target.rows] < T)) if lengths is not None and T > 0 else float("nan")
                rows.append(
                    {
                        "cue": cue,
                        **_base(target, k),
                        "T": int(T),
                        "representation": label,
                        "score": float(per_item.mean()),
                        "ci_low": low,
                        "ci_high": high,
                        "chance": target.chance(k),
                        "frac_shorter": shorter,
                    }
                )
    return pd.DataFrame(rows)


def layerwise(
    ids: Sequence[str],
    reps: Mapping[str, np.ndarray],
    encoder_feats: EncoderFeatures,
    *,
    kind: str = "gen_mean",
    settings: AlignmentSettings = DEFAULT_SETTINGS,
) -> pd.DataFrame:
    """Mutual k-NN of every single layer's representation, beside the layer mean (``layer_mean_score``).

    Layer indices are those of the saved arrays (index 0 is the embedding output when 03 ran with
    ``include_embeddings``); the layer mean starts at ``first_layer`` as in notebook 05.
    """
    k, q, first_layer = settings.k, settings.quantile, settings.first_layer
    rows = []
    for target in usable(encoder_spaces(ids, encoder_feats, q), k, "layerwise"):
        for cue in cues_of(reps):
            per_layer = _get(reps, cue, kind)
            mean_score = float(target.per_item(alignment.layer_mean(per_layer, first_layer), k).mean())
            for layer in range(per_layer.shape[1]):
                rows.append(
                    {
                        "cue": cue,
                        "kind": kind,
                        **_base(target, k),
                        "layer": layer,
                        "score": float(target.per_item(per_layer[:, layer, :], k).mean()),
                        "layer_mean_score": mean_score,
                        "chance": target.chance(k),
                    }
                )
    return pd.DataFrame(rows)


def with_holm(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``p_holm`` (Holm–Bonferroni over all its ``p_value`` rows: one family) and ``stars``."""
    if df.empty:
        return df
    df = df.copy()
    df["p_holm"] = holm(df["p_value"].to_numpy())
    df["stars"] = [stars(p) for p in df["p_holm"]]
    return df


def single_vs_generative(
    ids: Sequence[str],
    reps: Mapping[str, np.ndarray],
    encoder_feats: EncoderFeatures,
    *,
    baselines: Sequence[str] = ("prompt_last", "prompt_mean"),
    settings: AlignmentSettings = DEFAULT_SETTINGS,
) -> pd.DataFrame:
    """Generative representation vs a single pass over the prompt, per cue × encoder × baseline.

    ``diff`` = generative − single-pass score, paired on the same items and encoder graph, with its
    interval and ``p_value`` (:func:`helpers.metrics.stats.paired_difference`); ``p_holm`` adjusts over the whole table.
    """
    k, q, first_layer = settings.k, settings.quantile, settings.first_layer
    rows = []
    for target in usable(encoder_spaces(ids, encoder_feats, q), k, "single_vs_generative"):
        for cue in cues_of(reps):
            gen = target.overlaps(alignment.layer_mean(_get(reps, cue, "gen_mean"), first_layer), k)
            for baseline in baselines:
                single = target.overlaps(alignment.layer_mean(_get(reps, cue, baseline), first_layer), k)
                d = paired_difference(gen, single)
                rows.append(
                    {
                        "cue": cue,
                        **_base(target, k),
                        "baseline": baseline,
                        "score_single": float(single.mean()),
                        "score_generative": float(gen.mean()),
                        **d,
                    }
                )
    return with_holm(pd.DataFrame(rows))


def paired_cue_comparisons(
    ids: Sequence[str],
    reps: Mapping[str, np.ndarray],
    encoder_feats: EncoderFeatures,
    *,
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
    kind: str = "gen_mean",
    settings: AlignmentSettings = DEFAULT_SETTINGS,
) -> pd.DataFrame:
    """Cue differences per encoder (default SEE−NONE, HEAR−NONE, SEE−HEAR) on the same items.

    ``diff`` = score(cue_1) − score(cue_2) of the ``kind`` representation, with its interval and
    two-sided ``p_value`` (:func:`helpers.metrics.stats.paired_difference`), ``p_holm`` (Holm–Bonferroni over every row of
    the table: all pairs × encoders) and ``stars`` from ``p_holm``. Pairs naming a cue the run does
    not have are left out.
    """
    k, q, first_layer = settings.k, settings.quantile, settings.first_layer
    cues = set(cues_of(reps))
    pairs = [(c1, c2) for c1, c2 in pairs if c1 in cues and c2 in cues]
    rows = []
    for target in usable(encoder_spaces(ids, encoder_feats, q), k, "paired_cue_comparisons"):
        per_cue = {
            cue: target.overlaps(alignment.layer_mean(_get(reps, cue, kind), first_layer), k)
            for cue in {c for pair in pairs for c in pair}
        }
        for c1, c2 in pairs:
            d = paired_difference(per_cue[c1], per_cue[c2])
            rows.append(
                {
                    **_base(target, k),
                    "kind": kind,
                    "comparison": f"{c1}-{c2}",
                    "cue_1": c1,
                    "cue_2": c2,
                    "score_1": float(per_cue[c1].mean()),
                    "score_2": float(per_cue[c2].mean()),
                    **d,
                }
            )
    return with_holm(pd.DataFrame(rows))


def permutation_table(
    ids: Sequence[str],
    reps: Mapping[str, np.ndarray],
    encoder_feats: EncoderFeatures,
    *,
    kinds: Sequence[str] = ("gen_mean", "prompt_last", "prompt_mean"),
    settings: AlignmentSettings = DEFAULT_SETTINGS,
) -> pd.DataFrame:
    """Every alignment value (cue × kind × encoder) against its permutation null.

    The null re-pairs the encoder's items with random LLM items (``n_perm`` times); ``calibrated``
    = (score − null mean) / (1 − null mean) is 0 at chance and 1 at perfect agreement. ``p_value``
    is one-sided (score above the null), ``p_holm`` Holm-adjusted over the table.
    """
    k, q, first_layer, n_perm, seed = (
        settings.k,
        settings.quantile,
        settings.first_layer,
        settings.n_perm,
        settings.seed,
    )
    rows = []
    for target in usable(encoder_spaces(ids, encoder_feats, q), k, "permutation_table"):
        knn_enc = target.knn(k)
        for cue in cues_of(reps):
            for kind in kinds:
                if f"{cue}/{kind}" not in reps:
                    continue
                knn_llm = target.llm_knn(alignment.layer_mean(reps[f"{cue}/{kind}"], first_layer), k)
                observed = float(overlap_from_knn(knn_llm, knn_enc).mean())
                summary = null_summary(observed, null_overlaps(knn_llm, knn_enc, n_perm=n_perm, seed=seed))
                rows.append(
                    {
                        "cue": cue,
                        "kind": kind,
                        **_base(target, k),
                        "chance": target.chance(k),
                        **summary,
                    }
                )
    return with_holm(pd.DataFrame(rows))


def robustness(
    ids: Sequence[str],
    reps: Mapping[str, np.ndarray],
    encoder_feats: EncoderFeatures,
    *,
    ks: Sequence[int] = (5, 10, 20),
    metrics: str | Sequence[str] = ("mutual_knn", "cknna"),
    kind: str = "gen_mean",
    baseline: str = "NONE",
    settings: AlignmentSettings = DEFAULT_SETTINGS,
) -> pd.DataFrame:
    """The main cue comparison under other k and other metrics, one row per metric × k × encoder.

    Columns: one per cue (its score), ``<cue>-<baseline>`` per other cue and, when the run has
    SEE, HEAR and NONE, ``matched_effect`` (SEE−NONE for a vision encoder, HEAR−NONE for an audio
    one) and ``matches_paper`` (that effect > 0). Metrics with a neighbourhood (mutual k-NN,
    CKNNA) get one row per k; unbiased CKA one row (``k`` empty). Mutual k-NN is always included.
    """
    q, first_layer = settings.quantile, settings.first_layer
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    metrics = list(dict.fromkeys(["mutual_knn", *[alignment.check_metric(m) for m in metrics]]))
    cues = cues_of(reps)
    vectors = {cue: alignment.layer_mean(_get(reps, cue, kind), first_layer) for cue in cues}
    rows = []
    for target in encoder_spaces(ids, encoder_feats, q):
        for metric in metrics:
            for k in ks if alignment.METRIC_USES_K[metric] else [None]:
                if k is not None and not target.fits(int(k)):
                    warnings.warn(
                        f"robustness: {target.name} shares only {target.n} items, k={k} left out", stacklevel=2
                    )
                    continue
                row = {"metric": metric, "metric_label": alignment.METRIC_LABELS[metric], **_base(target, k)}
                for cue in cues:
                    if metric == "mutual_knn":  # reuse the encoder's cached neighbourhoods
                        row[cue] = float(target.per_item(vectors[cue], int(k)).mean())
                    else:
                        row[cue] = alignment.score(metric, vectors[cue][target.rows], target.feats, k=int(k or 0), q=q)
                if baseline in cues:
                    for cue in cues:
                        if cue != baseline:
                            row[f"{cue}-{baseline}"] = row[cue] - row[baseline]
                if baseline == prompts.BASELINE_CUE and {*prompts.CUE_SENSES, baseline} <= set(cues):
                    row["matched_effect"] = row[f"{prompts.MATCHED_CUE[target.modality]}-{baseline}"]
                    row["matches_paper"] = bool(row["matched_effect"] > 0)
                rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["k"] = table["k"].astype("Int64")
    return table
