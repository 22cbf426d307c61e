"""Where the cue effect lives: in the generated words or in the generating model's states (notebook 12).

Model A (the *writer*) generates under each cue; model B (the *reader*) reads A's text,
teacher-forced after B's own prompt for the same cue and caption, and B's generative
representation of it (mean over B's layers and over the positions of A's text, the same pass
08 uses for edited texts) is aligned with the encoders. No new generation is needed: each writer's
texts are 09's generations at ``T`` (the run's own model: the first ``T`` tokens of 02's).

Representation names are ``"<reader><<writer>|<cue>"``; ``A<A`` is A's own generative
representation. For every matched (cue, modality) pair the cue effect (cue − NONE, paired over
items) is measured for each (reader, writer); :func:`contrasts` then asks, per writer A and reader
B, whether B reading A's text shows A's effect (it travels with the text) or B's own (it lives in
the states), each as a paired difference of per-item effects with its 95% CI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sp

from helpers import lm
from helpers.analyses.ablations import edited_generations, paired_alignment
from helpers.analyses.findings import equivalence_p, llm_cue_pairs
from helpers.analyses.pipeline import condition_examples, cue_conditions, stack_representations
from helpers.analyses.tables import with_holm
from helpers.core.settings import DEFAULT_SETTINGS, AlignmentSettings, LMSettings
from helpers.data.artifacts import StoredRun
from helpers.data.prompts import BASELINE_CUE, CUE_SENSES, MATCHED_CUE
from helpers.metrics.alignment import layer_mean
from helpers.metrics.knn_inference import Overlaps, effective_df, sampling_covariance, standard_error
from helpers.metrics.pairing import EncoderFeatures, common_rows, encoder_spaces
from helpers.metrics.stats import holm, paired_difference

Reps = dict[str, tuple[list[str], np.ndarray]]


def name(reader: str, writer: str, cue: str) -> str:
    """``"<reader><<writer>|<cue>"``: ``reader``'s representation of ``writer``'s text under ``cue``."""
    return f"{reader}<{writer}|{cue}"


def split_name(key: str) -> tuple[str, str, str]:
    """``(reader, writer, cue)`` of a :func:`name`."""
    pair, cue = key.rsplit("|", 1)
    reader, writer = pair.split("<", 1)
    return reader, writer, cue


def own_texts(
    model: lm.LLM,
    stored: StoredRun,
    *,
    table: pd.DataFrame,
    cues: Mapping[str, str],
    T: int,
    lm_settings: LMSettings,
    first_layer: int = 0,
) -> tuple[Reps, pd.DataFrame]:
    """The writer's own representations ``llm<llm|cue`` and its texts (``id``, ``cue``, ``user_text``, ``text``);
    the writer is ``lm_settings.llm``.

    Read from 03's prefix means (the run's model) or 09's cache (the others) when they exist,
    generated and cached otherwise (:func:`helpers.analyses.pipeline.cue_conditions`).
    """
    reps, texts, llm = {}, [], lm_settings.llm
    conds = cue_conditions(model, table, cues, stored, T=T, lm_settings=lm_settings, first_layer=first_layer)
    for cue, cond in conds.items():
        reps[name(llm, llm, cue)] = (cond.ids, cond.vector)
        written = condition_examples(cond, stored.gens, model.tokenizer, T, n=len(cond.ids))
        sub = table[table["cue"] == cue]
        user = dict(zip(sub["id"], sub["user_text"]))
        texts.append(written.assign(writer=llm, cue=cue, user_text=[user[i] for i in written["id"]]))
    return reps, pd.concat(texts, ignore_index=True)


def read_texts(
    model: lm.LLM,
    texts: pd.DataFrame,
    *,
    reader: str,
    lm_settings: LMSettings,
    first_layer: int = 0,
) -> Reps:
    """``reader``'s representations of every (writer, cue) in ``texts`` (:func:`own_texts`'s tables).

    The reader's prompt for the same caption and cue (its own chat template, or none), then the
    writer's text re-tokenised by the reader's tokenizer; one cached teacher-forced pass
    (:func:`helpers.lm.represent_cached`), the mean over the text's positions and all layers
    (``lm_settings``: the batch size and ``include_embeddings``).
    """
    reps: Reps = {}
    for (writer, cue), sub in texts.groupby(["writer", "cue"], sort=False):
        prompts = [lm.format_prompt(model, u) for u in sub["user_text"]]
        prompt_ids = lm.encode_prompts(model, prompts)
        gens = edited_generations(model.tokenizer, prompt_ids, list(sub["text"]))
        empty = [i for i, g in zip(sub["id"], gens) if not g["gen_ids"]]
        if empty:
            raise ValueError(f"{writer}'s {cue} text of item(s) {empty[:3]} is empty after re-tokenisation by {reader}")
        batch = lm.resolve_batch_size(
            lm_settings.rep_batch_size,
            model,
            max(len(p) + len(g["gen_ids"]) for p, g in zip(prompt_ids, gens)),
            "represent",
        )
        out = lm.represent_cached(model, gens, include_embeddings=lm_settings.include_embeddings, batch_size=batch)
        reps[name(reader, writer, cue)] = (
            list(sub["id"]),
            layer_mean(stack_representations(out)["gen_mean"], first_layer),
        )
    return reps


def transfer_representations(
    names: Sequence[str],
    table: pd.DataFrame,
    cues: Mapping[str, str],
    stored: StoredRun,
    *,
    load_model: Callable[[str], lm.LLM],
    T: int,
    lm_settings: LMSettings,
    first_layer: int = 0,
) -> tuple[Reps, pd.DataFrame]:
    """Every model's own representations and every model's reading of every other's texts.

    Two passes over ``names`` with one model in memory at a time: each writes (its own texts and
    representations, :func:`own_texts`), then each reads the others' texts (:func:`read_texts`).
    ``lm_settings``: the run's (its ``llm`` is replaced by each name in turn).
    Returns the representations (:func:`name` keys) and all writers' texts.
    """
    if len(set(names)) < 2:
        raise ValueError(f"the transfer test needs two or more different LLMs, got {list(names)}")
    reps: Reps = {}
    texts = []
    for llm in names:
        model = load_model(llm)
        settings = lm_settings.replace(llm=llm)
        own, written = own_texts(
            model, stored, table=table, cues=cues, T=T, lm_settings=settings, first_layer=first_layer
        )
        reps.update(own)
        texts.append(written)
        lm.free_llm(model)
    texts = pd.concat(texts, ignore_index=True)
    for reader in names:
        model = load_model(reader)
        others = texts[texts["writer"] != reader]
        reps.update(
            read_texts(
                model,
                others,
                reader=reader,
                lm_settings=lm_settings.replace(llm=reader),
                first_layer=first_layer,
            )
        )
        lm.free_llm(model)
    return reps, texts


def cue_effects(
    reps: Reps, encoder_feats: EncoderFeatures, settings: AlignmentSettings = DEFAULT_SETTINGS
) -> pd.DataFrame:
    """Cue − NONE per (reader, writer), cue and encoder, paired over items (Holm over the table).

    Columns of :func:`helpers.analyses.ablations.paired_alignment` plus ``reader``, ``writer``, ``cue``,
    ``reading`` (a label), ``comparison`` (``"SEE-NONE"``), ``cue_1`` and ``matched``.
    """
    out = with_holm(paired_alignment(reps, llm_cue_pairs(list(reps)), encoder_feats, settings=settings))
    parts = [split_name(c) for c in out["condition"]]
    out["reader"], out["writer"], out["cue"] = zip(*parts) if parts else ([], [], [])
    out["reading"] = [reading_label(r, w) for r, w in zip(out["reader"], out["writer"])]
    out["comparison"] = [f"{c}-{BASELINE_CUE}" for c in out["cue"]]
    out["cue_1"] = out["cue"]
    out["matched"] = [MATCHED_CUE.get(m) == c for m, c in zip(out["modality"], out["cue"])]
    return out


def reading_label(reader: str, writer: str) -> str:
    """``"X's own"`` or ``"Y reads X"``, with short model names."""
    r, w = short(reader), short(writer)
    return f"{w}'s own" if reader == writer else f"{r} reads {w}"


def short(model: str) -> str:
    """A model name without its organisation and ``-instruct`` suffix."""
    return model.rsplit("/", 1)[-1].removesuffix("-instruct")


def _per_item_effects(
    reps: Reps, keys: Sequence[str], encoder_feats: EncoderFeatures, settings: AlignmentSettings
) -> dict[str, dict[str, Overlaps]]:
    """encoder → representation name → per-item mutual k-NN overlap, all on the items every key covers."""
    ids = list(reps[keys[0]][0])
    for k in keys[1:]:
        ids, _, _ = common_rows(ids, reps[k][0])
    out: dict[str, dict[str, Overlaps]] = {}
    for space in encoder_spaces(ids, encoder_feats, settings.quantile):
        space.require(settings.k, "the transfer contrasts")
        out[space.name] = {}
        for k in keys:
            _, _, rows = common_rows(ids, reps[k][0])
            out[space.name][k] = space.overlaps(np.asarray(reps[k][1])[rows], settings.k)
    return out


def contrasts(
    reps: Reps, names: Sequence[str], encoder_feats: EncoderFeatures, settings: AlignmentSettings = DEFAULT_SETTINGS
) -> pd.DataFrame:
    """Per writer A, reader B ≠ A, matched (cue, encoder): does B reading A's text show A's effect?

    Effects are per-item (cue − NONE) overlaps on the same items: ``writer_effect`` (A's own),
    ``read_effect`` (B reading A's text), ``reader_effect`` (B's own), and two paired differences
    with 95% CIs: ``read − writer`` (0 when the effect travels with the text) and
    ``read − reader`` (0 when B's reading is B's own effect whatever it reads).
    """
    modality_of = {n: m for n, (m, _, _) in encoder_feats.items()}
    rows = []
    for a in names:
        for b in names:
            if a == b:
                continue
            for cue in CUE_SENSES:
                keys = [name(x, y, c) for x, y in ((a, a), (b, a), (b, b)) for c in (cue, BASELINE_CUE)]
                if not all(k in reps for k in keys):
                    continue
                feats = {e: f for e, f in encoder_feats.items() if MATCHED_CUE.get(modality_of[e]) == cue}
                if not feats:
                    continue
                per = _per_item_effects(reps, keys, feats, settings)
                for enc, ov in per.items():
                    eff = {
                        who: ov[name(x, y, cue)] - ov[name(x, y, BASELINE_CUE)]
                        for who, (x, y) in {"writer": (a, a), "read": (b, a), "reader": (b, b)}.items()
                    }
                    rows.append(_contrast_row(a, b, cue, enc, modality_of[enc], eff, settings))
    return _with_holm(pd.DataFrame(rows))


def _contrast_row(
    a: str, b: str, cue: str, enc: str, modality: str, eff: Mapping[str, Overlaps], settings: AlignmentSettings
) -> dict:
    row = {
        "writer": a,
        "reader": b,
        "cue": cue,
        "comparison": f"{cue}-{BASELINE_CUE}",
        "encoder": enc,
        "modality": modality,
        "n_items": eff["read"].n,
    }
    for who in ("writer", "read", "reader"):
        d = paired_difference(eff[who], eff[who].zero())
        row.update(
            {
                f"{who}_effect": d["diff"],
                f"{who}_ci_low": d["ci_low"],
                f"{who}_ci_high": d["ci_high"],
                f"{who}_p": d["p_value"],
            }
        )
    row["read_equiv_p"] = equivalence_p(row["read_effect"], standard_error(eff["read"]), row["n_items"])
    for other in ("writer", "reader"):
        d = paired_difference(eff["read"], eff[other])
        row.update(
            {
                f"read_minus_{other}": d["diff"],
                f"read_minus_{other}_low": d["ci_low"],
                f"read_minus_{other}_high": d["ci_high"],
                f"read_minus_{other}_p": d["p_value"],
            }
        )
    row["read_minus_writer_equiv_p"] = equivalence_p(
        row["read_minus_writer"], standard_error(eff["read"] - eff["writer"]), row["n_items"]
    )
    row.update(_fraction(eff["read"], eff["writer"]))
    return row


def _fraction(read: Overlaps, writer: Overlaps, level: float = 0.95) -> dict[str, float]:
    """The share of the writer's effect that the reading shows, read / writer, with a delta-method interval
    from the two effects' joint dyadic covariance (they share items and encoder graph)."""
    w, r = writer.mean(), read.mean()
    if w == 0:
        return {"fraction": float("nan"), "fraction_low": float("nan"), "fraction_high": float("nan")}
    (vr, c), (_, vw) = sampling_covariance([read, writer])
    f = r / w
    se = float(np.sqrt(max(vr - 2 * f * c + f * f * vw, 0.0)) / abs(w))
    half = float(sp.t.ppf(0.5 + level / 2, effective_df(read.n))) * se
    return {"fraction": f, "fraction_low": f - half, "fraction_high": f + half}


P_COLUMNS = (
    "writer_p",
    "read_p",
    "reader_p",
    "read_minus_writer_p",
    "read_minus_reader_p",
    "read_equiv_p",
    "read_minus_writer_equiv_p",
)


def _with_holm(table: pd.DataFrame) -> pd.DataFrame:
    """Each p column of :data:`P_COLUMNS` Holm-corrected across the table's rows (``<column>_holm``)."""
    if table.empty:
        return table
    table = table.copy()
    for col in P_COLUMNS:
        table[f"{col}_holm"] = holm(table[col].to_numpy(dtype=float))
    return table


def _ci(x: float, lo: float, hi: float) -> str:
    return f"{x:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def verdict(row: Mapping) -> str:
    """One of ``no effect to transfer``, ``travels with the text``, ``stays with the writer``, ``partly
    travels``, ``undetermined``, from :func:`contrasts`' Holm-corrected tests.

    The writer's own effect must be significant; *travels*: reading − writing is equivalent to 0 (within
    ± :data:`helpers.analyses.findings.EQUIVALENCE_MARGIN`); *stays*: the reading's effect is equivalent to 0;
    *partly*: the reading shows a significant effect of the writer's sign that is significantly smaller.
    """
    alpha = 0.05
    if not row["writer_p_holm"] < alpha:
        return "no effect to transfer"
    travels = row["read_minus_writer_equiv_p_holm"] < alpha
    stays = row["read_equiv_p_holm"] < alpha
    if travels and not stays:
        return "travels with the text"
    if stays and not travels:
        return "stays with the writer"
    if (
        row["read_p_holm"] < alpha
        and np.sign(row["read_effect"]) == np.sign(row["writer_effect"])
        and row["read_minus_writer_p_holm"] < alpha
    ):
        return "partly travels"
    return "undetermined"


def conclusion(table: pd.DataFrame) -> str:
    """Markdown: per writer, reader, matched cue and encoder, the three effects and the verdict, computed from ``table``."""
    if table.empty:
        return "No matched (cue, encoder) pair with both cues for two LLMs: nothing to conclude."
    lines = []
    for _, r in table.iterrows():
        v = verdict(r)
        lines.append(
            f"- **{r['comparison']} on {r['encoder']}** ({r['n_items']} items), {short(r['writer'])}'s text: "
            f"{short(r['writer'])}'s own effect {_ci(r['writer_effect'], r['writer_ci_low'], r['writer_ci_high'])}; "
            f"{short(r['reader'])} reading it {_ci(r['read_effect'], r['read_ci_low'], r['read_ci_high'])}; "
            f"{short(r['reader'])}'s own {_ci(r['reader_effect'], r['reader_ci_low'], r['reader_ci_high'])}. "
            f"Reading − writing {_ci(r['read_minus_writer'], r['read_minus_writer_low'], r['read_minus_writer_high'])}; "
            f"the reading shows {_ci(r['fraction'], r['fraction_low'], r['fraction_high'])} of the writer's effect: "
            f"**{v}**."
        )
    counts = pd.Series([verdict(r) for _, r in table.iterrows()]).value_counts()
    summary = ", ".join(f"{n} × {v}" for v, n in counts.items())
    near_writer = int(
        (
            (table["read_effect"] - table["writer_effect"]).abs()
            < (table["read_effect"] - table["reader_effect"]).abs()
        ).sum()
    )
    differs = int((table["read_minus_writer_p_holm"] < 0.05).sum())
    return "\n".join(
        [
            f"Over {len(table)} (writer, reader, cue, encoder) tests: {summary}. The reading's effect is closer to the "
            f"writer's own in {near_writer} and to the reader's own in {len(table) - near_writer} (point estimates); "
            f"in {differs} of {len(table)} the reading differs from the writing (Holm-corrected across the rows). "
            f"*Travels* and *stays* need an equivalence test (within ±0.02 of the writing, or of 0), not a CI that "
            f"includes 0.",
            "",
            *lines,
        ]
    )


__all__ = [
    "conclusion",
    "contrasts",
    "cue_effects",
    "name",
    "own_texts",
    "read_texts",
    "reading_label",
    "short",
    "split_name",
    "transfer_representations",
    "verdict",
]
