"""Notebook 08's two ablations over a finished run, one function per step.

Is the SEE/HEAR effect just the model *saying* sensory words? The paper answers from both sides:

1. :func:`ablation_items`: which items each cue is tested on (SEE on every item, HEAR on the
   items with a sound) and the cue's generations from 02 in that order;
2. :func:`random_word_conditions`: random sensory words appended to the caption or replacing
   it, generated anew at ``T``, each against the cue's own prompt at the same ``T`` (read from
   the run when 03 stored that prefix, see :func:`helpers.analyses.pipeline.condition_representation`);
3. :func:`removal_ablation`: the sensory words taken out of the generated texts (and as many
   random words, the control), re-encoded, each against the unedited generations;
4. :func:`label_ablations` names the rows of :func:`helpers.analyses.ablations.paired_alignment` for the
   results table, and :func:`matched_rows` keeps the cue × encoder pairs the paper predicts.

The text operations themselves (random words, removal, re-tokenisation) are in
:mod:`helpers.analyses.ablations`; the cached generation and representation passes in :mod:`helpers.analyses.pipeline`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers import lm
from helpers.analyses import ablations, tables
from helpers.analyses.pipeline import (
    condition_representation,
    cue_representations,
    removal_conditions,
    stored_representation,
)
from helpers.core.settings import LMSettings
from helpers.data import prompts
from helpers.data.artifacts import StoredRun
from helpers.data.manifest import modality_subset
from helpers.lm import Decoding

#: The cues the ablations test, each with its sensory lexicon and the encoder modality it should align with.
CUE_SENSES = prompts.CUE_SENSES


@dataclass
class AblationItems:
    """The items each tested cue is ablated on: ``lexicon[cue]`` (``"visual"``/``"auditory"``),
    ``ids[cue]`` and ``generations[cue]`` (the cue's rows of 02's table, in ``ids`` order);
    ``notes`` says which cue was left out and why."""

    lexicon: dict[str, str]
    ids: dict[str, list[str]]
    generations: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)


def ablation_items(gens: pd.DataFrame, manifest: pd.DataFrame) -> AblationItems:
    """SEE on every item of the run, HEAR on the items that have a sound (a cue with none is left out)."""
    missing = sorted(set(CUE_SENSES) - set(gens["cue"]))
    if missing:
        raise ValueError(f"the run's generations have no {missing} cue: 08 needs SEE and HEAR from 02")
    audio_ids = set(modality_subset(manifest, "audio")["id"])
    out = AblationItems({}, {}, {})
    for cue, (lexicon, modality) in CUE_SENSES.items():
        ids = [i for i in dict.fromkeys(gens.loc[gens["cue"] == cue, "id"]) if modality != "audio" or i in audio_ids]
        if not ids:  # e.g. HEAR on an image-only dataset (WiT)
            out.notes.append(f"{cue}: no item of this run has a {lexicon} counterpart to test; {cue} left out of 08")
            continue
        out.lexicon[cue], out.ids[cue] = lexicon, ids
        out.generations[cue] = gens[gens["cue"] == cue].set_index("id").loc[ids].reset_index()
    return out


@dataclass
class RunRepresentations:
    """What 02 and 03 stored for the run (its generations table, representation ids and arrays)
    and the settings they were made with; conditions they already cover are read, not recomputed."""

    stored: StoredRun
    settings: LMSettings


@dataclass
class Conditions:
    """Ablated conditions and their baselines: ``reps`` (name → (ids, ``[items, hidden]``)) and
    ``comparisons`` (condition → baseline), as :func:`helpers.analyses.ablations.paired_alignment` takes them."""

    reps: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    comparisons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def random_word_conditions(
    model: lm.LLM,
    run: RunRepresentations,
    items: AblationItems,
    lexicons: Mapping[str, Any],
    decoding: Decoding,
    *,
    append_k: int,
    replace_n: int,
    seed: int = 0,
    n_examples: int = 3,
    control_lexicon: Any = None,
) -> tuple[Conditions, pd.DataFrame]:
    """``{cue}/random_append`` (``append_k`` random words of the cue's lexicon after the caption) and
    ``{cue}/random_replace`` (the caption replaced by ``replace_n`` of them), both against
    ``{cue}/T{T}``, the cue's own prompt at ``T = decoding.max_new_tokens``. With ``control_lexicon`` (the
    non-sensory words, :func:`helpers.data.lexicon.load_lexicon` ``("nonsensory")``) also
    ``{cue}/nonsensory_append``: ``append_k`` random *non-sensory* words after the caption, the control that
    tells a drop due to sensory words from one due to any appended words.

    Returns the conditions and the first ``n_examples`` new generations of each (``cue``,
    ``condition``, ``user_text``, ``text``, ...).

    Many parameters because the ablation's design is its parameters: how many words are appended or replace the
    caption, the seed that draws them, the control lexicon and how many examples to show.
    """
    out, examples, T = Conditions(), [], int(decoding.max_new_tokens)
    for cue, lexicon in items.lexicon.items():
        ids, sub = items.ids[cue], items.generations[cue]
        template = sub["template"].iloc[0]
        base = condition_representation(
            model,
            run.stored,
            cue=cue,
            template=template,
            ids=ids,
            user_texts=list(sub["user_text"]),
            decoding=decoding,
            lm_settings=run.settings,
        )
        out.notes.append(
            f"{cue}: baseline at T={T} "
            + (
                f"from 03 ({base.stored_key}), no new generation"
                if base.stored_key
                else f"not in the run ({base.why_not_stored}); generated"
            )
        )
        out.reps[f"{cue}/T{T}"] = (ids, base.vector)
        variants = [
            ("random_append", lexicons[lexicon], "append", append_k),
            ("random_replace", lexicons[lexicon], "replace", replace_n),
        ]
        if control_lexicon is not None:
            variants.append(("nonsensory_append", control_lexicon, "append", append_k))
        for name, words, mode, n in variants:
            caps = ablations.random_word_captions(ids, sub["caption"], words, mode, n, seed)
            user_texts = [prompts.fill(template, c) for c in caps["new_caption"]]
            res = cue_representations(model, ids, user_texts, decoding, lm_settings=run.settings)
            out.reps[f"{cue}/{name}"] = (ids, res.vector())
            out.comparisons[f"{cue}/{name}"] = f"{cue}/T{T}"
            examples.append(res.table.assign(cue=cue, condition=name).head(n_examples))
    return out, pd.concat(examples) if examples else pd.DataFrame()


@dataclass
class Removal:
    """The removal ablation: its conditions, per cue the :func:`helpers.analyses.ablations.removal_table`
    (``tables``) and the words-removed counts of every cue (``counts``)."""

    conditions: Conditions
    tables: dict[str, pd.DataFrame]
    counts: pd.DataFrame


def removal_ablation(
    model: lm.LLM,
    run: RunRepresentations,
    items: AblationItems,
    lexicons: Mapping[str, Any],
    full_decoding: Decoding,
    *,
    seed: int = 0,
) -> Removal:
    """``{cue}/remove_sensory`` (the cue lexicon's words taken out of the generated text) and
    ``{cue}/remove_random`` (as many random non-sensory words taken out), against ``{cue}/full``.

    The unedited generations' representations are 03's when the run has them at
    ``full_decoding`` (02's settings), else re-encoded; items an edit leaves empty drop out (noted).
    The re-encoding batch size is ``run.settings.rep_batch_size`` (``"auto"``: from free memory for the
    run's longest generation).
    """
    out, tables, counts = Conditions(), {}, []
    gens, include_embeddings = run.stored.gens, run.settings.include_embeddings
    longest = int((gens["prompt_ids"].map(len) + gens["n_gen_tokens"]).max())
    batch_size = lm.resolve_batch_size(run.settings.rep_batch_size, model, longest, "represent")
    n_layers = model.n_layers + int(include_embeddings)
    for cue, lexicon in items.lexicon.items():
        sub = items.generations[cue]
        tables[cue] = table = ablations.removal_table(items.ids[cue], sub["text"], lexicons[lexicon], seed)
        counts.append(ablations.removal_counts(table, label=f"{cue}: {lexicon} words"))
        fidelity = ablations.retokenization_fidelity(model.tokenizer, sub["text"], sub["gen_ids"])
        out.notes.append(f"{cue}: retokenisation fidelity {fidelity:.1%}")
        full = stored_representation(
            run.stored,
            cue=cue,
            template=sub["template"].iloc[0],
            decoding=full_decoding,
            ids=items.ids[cue],
            lm_settings=run.settings,
            n_layers=n_layers,
        )
        if full.array is None:  # 03's pass over these very generations is not in the run
            out.notes.append(f"{cue}: {full.why_not}; re-encoding the unedited generations")
        removed = removal_conditions(
            model, sub, table, full.array, include_embeddings=include_embeddings, batch_size=batch_size
        )
        if removed.dropped:
            out.notes.append(
                f"{cue}: {len(removed.dropped)} item(s) with nothing left after removal, "
                f"left out: {removed.dropped[:5]}"
            )
        out.reps[f"{cue}/full"] = (removed.ids, removed.full)
        for name, vector in removed.edited.items():
            out.reps[f"{cue}/{name}"] = (removed.ids, vector)
            out.comparisons[f"{cue}/{name}"] = f"{cue}/full"
    return Removal(out, tables, pd.concat(counts, ignore_index=True) if counts else pd.DataFrame())


def merge(*conditions: Conditions) -> Conditions:
    """One :class:`Conditions` holding all of them, in order."""
    out = Conditions()
    for c in conditions:
        out.reps.update(c.reps)
        out.comparisons.update(c.comparisons)
        out.notes.extend(c.notes)
    return out


#: each ablation and its matched control, compared directly (item by item, same items and encoder graph)
DIRECT_CONTROLS = {"remove_sensory": "remove_random", "random_append": "nonsensory_append"}


def direct_controls(comparisons: Mapping[str, str]) -> dict[str, str]:
    """``{cue}/<ablation>`` against ``{cue}/<its control>`` (:data:`DIRECT_CONTROLS`) for every cue whose
    ablation and control are both among ``comparisons``: sensory-word removal against removing as many
    random non-sensory words, random sensory words appended against random non-sensory words appended."""
    out = {}
    for cond in comparisons:
        cue, _, name = cond.partition("/")
        control = DIRECT_CONTROLS.get(name)
        if control and f"{cue}/{control}" in comparisons:
            out[cond] = f"{cue}/{control}"
    return out


def label_ablations(
    paired: pd.DataFrame, *, run_name: str, append_k: int, replace_n: int, random_T: int, full_T: int
) -> pd.DataFrame:
    """:func:`helpers.analyses.ablations.paired_alignment`'s rows with ``cue``, a readable ``ablation``, its
    ``family`` (random sensory words, removal) and ``T``, and the ``run`` name first.

    ``p_holm`` and ``stars`` correct the p-values over the whole table (every ablation ×
    cue × encoder: the family 08 tests), as 07 does over its cue comparisons."""
    labels = {
        "random_append": f"+{append_k} random words",
        "random_replace": f"caption → {replace_n} random words",
        "nonsensory_append": f"+{append_k} random non-sensory words (control)",
        "remove_sensory": "sensory words removed",
        "remove_random": "random words removed (control)",
    }
    direct_labels = {
        "remove_random": "sensory − random words removed",
        "nonsensory_append": "sensory − non-sensory random words appended",
    }
    out = paired.copy()
    out[["cue", "ablation"]] = out["condition"].str.split("/", expand=True)
    out["ablation"] = out["ablation"].map(labels)
    if "baseline" in out:
        for control, label in direct_labels.items():
            out.loc[out["baseline"].str.endswith(f"/{control}").to_numpy(), "ablation"] = label
    out["family"] = np.where(out["condition"].str.contains("/remove_"), "removal", "random words")
    out["T"] = np.where(out["family"] == "removal", full_T, random_T)
    out.insert(0, "run", run_name)
    return tables.with_holm(out)


def matched_rows(table: pd.DataFrame, cues: Sequence[str] = tuple(CUE_SENSES)) -> pd.DataFrame:
    """The rows where the cue meets the encoder modality it should align with (SEE × vision, HEAR × audio)."""
    keep = np.zeros(len(table), dtype=bool)
    for cue in cues:
        keep |= (table["cue"] == cue).to_numpy() & (table["modality"] == CUE_SENSES[cue][1]).to_numpy()
    return table[keep]


__all__ = [
    "CUE_SENSES",
    "AblationItems",
    "Conditions",
    "Removal",
    "RunRepresentations",
    "ablation_items",
    "label_ablations",
    "matched_rows",
    "merge",
    "random_word_conditions",
    "removal_ablation",
    "direct_controls",
]
