"""Prompt → generation → generative representation in one call, for the ablation notebooks.

It also holds the conditions notebooks 08 and 09 add: :func:`condition_representation` (the
run's stored prefix mean, or a new generation) and :func:`removal_conditions` (generations
re-encoded with words removed).

The tutorial notebooks 02 and 03 run these steps one at a time so a reader can look at
each (:func:`prompt_table`, :func:`generate_table`, :func:`run_representations`); notebooks that need *extra* conditions (random sensory words, other models, an
edited cue in the playground) call :func:`cue_representations` instead. Every step goes
through the same cached functions, so a condition already computed by 02/03 (same model,
prompt strings and settings) costs nothing here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from helpers import lm
from helpers.analyses.ablations import edited_generations
from helpers.core.settings import DEFAULT_LM_SETTINGS, LMSettings
from helpers.data import prompts
from helpers.data.artifacts import StoredRun
from helpers.lm import Decoding
from helpers.metrics.alignment import layer_mean


@dataclass
class CueResult:
    """Generations and representations of one condition, rows in ``ids`` order.

    ``table`` has one row per item: ``id``, ``user_text``, ``prompt`` (the exact string fed to
    the model), ``text`` and ``n_gen_tokens``. ``per_layer`` maps a representation kind
    (``gen_mean``, ``prompt_mean``, ``prompt_last`` and ``prefix_T<t>`` when prefix lengths
    were asked for) to ``[items, layers, hidden]``.
    """

    ids: list[str]
    table: pd.DataFrame
    per_layer: dict[str, np.ndarray] = field(default_factory=dict)

    def vector(self, kind: str = "gen_mean", first_layer: int = 0) -> np.ndarray:
        """The layer-mean representation ``[items, hidden]`` of one kind."""
        return layer_mean(self.per_layer[kind], first_layer)


def cue_representations(
    model: lm.LLM,
    ids: Sequence[str],
    user_texts: Sequence[str],
    decoding: Decoding = Decoding(),
    *,
    lm_settings: LMSettings = DEFAULT_LM_SETTINGS,
    prefix_lengths: Sequence[int] = (),
    system: str | None = None,
) -> CueResult:
    """Generate from ``user_texts`` (formatted with the model's chat template, behind ``system``
    when given: :func:`helpers.lm.format_prompt`) and represent them.

    ``ids[i]`` names the item of ``user_texts[i]``. Empty generations are an error (they have
    no generative representation) naming the item. ``lm_settings`` gives the batch sizes (may be
    ``"auto"``: :func:`helpers.lm.resolve_batch_size`, from free accelerator memory) and
    ``include_embeddings``.
    """
    include_embeddings = lm_settings.include_embeddings
    if len(ids) != len(user_texts):
        raise ValueError(f"{len(ids)} ids but {len(user_texts)} texts")
    prompts = [lm.format_prompt(model, t, system) for t in user_texts]
    longest = max((len(p) for p in lm.encode_prompts(model, prompts)), default=1) + decoding.max_new_tokens
    gen_batch_size = lm.resolve_batch_size(lm_settings.gen_batch_size, model, longest, "generate")
    rep_batch_size = lm.resolve_batch_size(lm_settings.rep_batch_size, model, longest, "represent")
    reduction = lm.Reduction(include_embeddings, tuple(prefix_lengths))  # represented while generated
    gens = lm.generate_cached(model, prompts, decoding, batch_size=gen_batch_size, reduction=reduction)
    empty = [i for i, g in zip(ids, gens) if not g["gen_ids"]]
    if empty:
        raise ValueError(
            f"{len(empty)} item(s) generated no tokens (e.g. {empty[:3]}): the model ended its answer at once; "
            "change the cue or the items"
        )
    reps = lm.represent_cached(
        model, gens, include_embeddings=include_embeddings, prefix_lengths=prefix_lengths, batch_size=rep_batch_size
    )
    table = pd.DataFrame(
        {
            "id": list(ids),
            "user_text": list(user_texts),
            "prompt": prompts,
            "text": [g["text"] for g in gens],
            "n_gen_tokens": [len(g["gen_ids"]) for g in gens],
        }
    )
    return CueResult(list(ids), table, stack_representations(reps, prefix_lengths))


def reduction_settings(include_embeddings: bool, prefix_lengths: Sequence[int]) -> lm.Reduction:
    """Notebook 03's representation settings (prefix lengths sorted, each once), as notebook 02
    hands them to generation so that its new generations are represented while decoded."""
    return lm.Reduction(bool(include_embeddings), tuple(sorted({int(t) for t in prefix_lengths})))


def prompt_table(
    model: Any, manifest: pd.DataFrame, cues: Mapping[str, str], max_new_tokens: int, gen_batch_size: int | str
) -> tuple[pd.DataFrame, int]:
    """Notebook 02's prompts: one row per (cue, item) with the exact ``prompt`` string the model reads.

    Returns the table (:func:`helpers.data.prompts.build_prompts` plus ``prompt``) and the generation
    batch size (``"auto"`` resolved from free accelerator memory for the longest prompt plus
    ``max_new_tokens``).
    """
    table = prompts.build_prompts(manifest, cues)
    table["prompt"] = [lm.format_prompt(model, t) for t in table["user_text"]]
    longest = max(len(ids) for ids in lm.encode_prompts(model, list(table["prompt"]))) + max_new_tokens
    return table, lm.resolve_batch_size(gen_batch_size, model, longest, "generate")


def generate_table(
    model: Any,
    table: pd.DataFrame,
    decoding: Decoding,
    *,
    batch_size: int,
    llm: str,
    enable_thinking: bool,
    reduction: lm.Reduction | None = None,
) -> pd.DataFrame:
    """Notebook 02's generations (cached) as columns of ``table``, with the settings 03, 08 and 09 check.

    Adds ``text``, ``prompt_ids``, ``gen_ids``, ``n_gen_tokens``, ``stopped_at_eos``, ``llm``,
    ``max_new_tokens``, ``do_sample`` (greedy runs let 08 and 09 reuse 03's prefix means) and
    ``enable_thinking``. With ``reduction`` (03's settings), new generations are represented as
    they are decoded, so 03 reads their representations instead of running a second pass.
    """
    gens = lm.generate_cached(model, list(table["prompt"]), decoding, batch_size=batch_size, reduction=reduction)
    table = table.copy()
    table["text"] = [g["text"] for g in gens]
    table["prompt_ids"] = [list(g["prompt_ids"]) for g in gens]
    table["gen_ids"] = [list(g["gen_ids"]) for g in gens]
    table["n_gen_tokens"] = table["gen_ids"].map(len)
    table["stopped_at_eos"] = [bool(g["stopped_at_eos"]) for g in gens]
    table["llm"] = llm
    table["max_new_tokens"] = decoding.max_new_tokens
    table["do_sample"] = bool(decoding.do_sample)
    table["enable_thinking"] = bool(enable_thinking)
    return table


def run_representations(
    model: Any, gens: pd.DataFrame, *, include_embeddings: bool, prefix_lengths: Sequence[int], batch_size: int | str
) -> tuple[list[str], dict[str, np.ndarray], list[str]]:
    """Notebook 03: the teacher-forced representations of 02's generations, stacked per cue.

    Returns the item ids (02's order), ``"<cue>/<kind>" -> [items, layers, hidden]`` arrays
    (:func:`stack_representations`) and notes for the reader (prefix lengths that are not
    shorter than the longest generation, whose means equal ``gen_mean``).
    """
    prefix_lengths = list(reduction_settings(include_embeddings, prefix_lengths).prefix_lengths)
    longest = int(gens["n_gen_tokens"].max())
    notes = []
    if any(t >= longest for t in prefix_lengths):
        notes.append(
            f"note: prefix lengths {[t for t in prefix_lengths if t >= longest]} are not shorter than the longest "
            f"generation ({longest} tokens): their means equal gen_mean"
        )
    longest_sequence = int((gens["prompt_ids"].map(len) + gens["n_gen_tokens"]).max())
    reps = lm.represent_cached(
        model,
        gens[["id", "cue", "prompt_ids", "gen_ids"]].to_dict("records"),
        include_embeddings=include_embeddings,
        prefix_lengths=prefix_lengths,
        batch_size=lm.resolve_batch_size(batch_size, model, longest_sequence, "represent"),
    )
    ids = list(dict.fromkeys(gens["id"]))
    arrays: dict[str, np.ndarray] = {}
    for cue, sub in gens.groupby("cue", sort=False):
        order = [sub.index[sub["id"] == i][0] for i in ids]
        stacked = stack_representations([reps[j] for j in order], prefix_lengths)
        arrays.update({f"{cue}/{kind}": arr for kind, arr in stacked.items()})
    return ids, arrays, notes


def stack_representations(
    reps: Sequence[Mapping[str, np.ndarray]], prefix_lengths: Sequence[int] = ()
) -> dict[str, np.ndarray]:
    """Per-item outputs of :func:`helpers.lm.represent` → ``kind -> [items, layers, hidden]`` float32."""
    out = {
        kind: np.stack([r[kind] for r in reps]).astype(np.float32)
        for kind in ("gen_mean", "prompt_mean", "prompt_last")
    }
    for j, t in enumerate(prefix_lengths):
        out[f"prefix_T{int(t)}"] = np.stack([r["prefix_means"][j] for r in reps]).astype(np.float32)
    return out


@dataclass(frozen=True)
class StoredLookup:
    """Whether a run already holds a condition's representation: ``array`` ``[items, layers, hidden]``
    and the ``key`` it was read from, or ``array`` and ``key`` None and ``why_not`` saying why."""

    array: np.ndarray | None
    key: str | None
    why_not: str = ""


def stored_representation(
    stored: StoredRun,
    *,
    cue: str,
    template: str,
    decoding: Decoding,
    ids: Sequence[str],
    lm_settings: LMSettings,
    n_layers: int | None = None,
) -> StoredLookup:
    """The run's own ``[items, layers, hidden]`` representation of a condition, if 02/03 already made it.

    Under greedy decoding a T-token generation is the first T tokens of 02's longer one, and 03
    keeps the mean over the first T tokens (``{cue}/prefix_T{T}``; ``{cue}/gen_mean`` when T is
    02's ``max_new_tokens``), so a condition with the run's model (``lm_settings.llm``), cue template
    and thinking mode at such a T needs no new generation and no forward pass. ``stored``: the run's
    generations (02) and representations (03), :func:`helpers.data.artifacts.stored_representations`.
    ``n_layers`` (when given) must match the stored layer count (it differs when 03 ran with
    another ``include_embeddings``).
    """
    gens, rep_ids, rep_arrays = stored

    def absent(why: str) -> StoredLookup:
        return StoredLookup(None, None, why)

    if decoding.do_sample:
        return absent("sampled decoding (the prefix shortcut needs greedy)")
    if "do_sample" not in gens or gens["do_sample"].astype(bool).any():
        return absent("the run's generations were not recorded as greedy")
    sub = gens[gens["cue"] == cue]
    if sub.empty:
        return absent(f"the run has no {cue} cue")
    if set(gens["llm"]) != {lm_settings.llm} or set(sub["template"]) != {template}:
        return absent(f"the run's {cue} generations come from another model or template")
    if "enable_thinking" in gens and set(gens["enable_thinking"].astype(bool)) != {bool(lm_settings.enable_thinking)}:
        return absent("the run used another thinking mode")
    T, T_full = int(decoding.max_new_tokens), int(gens["max_new_tokens"].iloc[0])
    key = f"{cue}/gen_mean" if T == T_full else f"{cue}/prefix_T{T}"
    pos = {i: j for j, i in enumerate(rep_ids)}
    if key not in rep_arrays or any(i not in pos for i in ids):
        return absent(f"no {key} for these items in the run's representations")
    arr = rep_arrays[key][[pos[i] for i in ids]]
    if n_layers is not None and arr.shape[1] != n_layers:
        return absent(f"{key} has {arr.shape[1]} layers, not {n_layers} (03 ran with another include_embeddings)")
    return StoredLookup(arr, key)


# ----------------------------------------------------------------------------- conditions of 08 and 09


@dataclass
class Condition:
    """One condition's layer-mean representation ``vector`` ``[items, hidden]`` (rows in ``ids`` order).

    ``stored_key`` names the run's array it was read from (no new generation); it is None when
    the condition was generated, and then ``why_not_stored`` says why and ``result`` holds the
    new generations and representations.
    """

    ids: list[str]
    vector: np.ndarray
    stored_key: str | None
    why_not_stored: str = ""
    result: CueResult | None = None


def condition_representation(
    model: lm.LLM,
    stored: StoredRun,
    *,
    cue: str,
    template: str,
    ids: Sequence[str],
    user_texts: Sequence[str],
    decoding: Decoding,
    lm_settings: LMSettings,
    first_layer: int = 0,
) -> Condition:
    """A condition's representation: the run's own (:func:`stored_representation`) when 02/03
    made it, else generated with :func:`cue_representations` from ``user_texts``.

    Many parameters because a condition is named by its cue and template (what the run's stored
    arrays are checked against), its items and their texts, and its decoding, and each is needed."""
    n_layers = model.n_layers + int(lm_settings.include_embeddings)
    found = stored_representation(
        stored, cue=cue, template=template, decoding=decoding, ids=ids, lm_settings=lm_settings, n_layers=n_layers
    )
    if found.array is not None:
        return Condition(list(ids), layer_mean(found.array, first_layer), found.key)
    res = cue_representations(model, ids, user_texts, decoding, lm_settings=lm_settings)
    return Condition(res.ids, res.vector("gen_mean", first_layer), None, found.why_not, res)


def condition_examples(cond: Condition, gens: pd.DataFrame, tokenizer, max_new_tokens: int, n: int = 2) -> pd.DataFrame:
    """The first ``n`` items of a condition with their ``prompt`` and generated ``text``: from the
    run's generations (their first ``max_new_tokens`` tokens) when the condition was stored, else
    from its new generations."""
    if cond.result is not None:
        return cond.result.table.head(n)[["id", "prompt", "text"]]
    cue = cond.stored_key.split("/")[0]
    ran = gens[gens["cue"] == cue].set_index("id").loc[cond.ids[:n]]
    texts = [tokenizer.decode([int(t) for t in g[:max_new_tokens]], skip_special_tokens=True) for g in ran["gen_ids"]]
    return pd.DataFrame({"id": list(ran.index), "prompt": list(ran["prompt"]), "text": texts})


def cue_conditions(
    model: lm.LLM,
    table: pd.DataFrame,
    cues: Mapping[str, str],
    stored: StoredRun,
    *,
    T: int,
    lm_settings: LMSettings,
    first_layer: int = 0,
) -> dict[str, Condition]:
    """:func:`condition_representation` of every cue of ``cues`` over its rows of ``table``
    (:func:`helpers.data.prompts.build_prompts`) at ``T`` greedy tokens; ``stored``: the run's generations,
    representation ids and arrays (:func:`helpers.data.artifacts.stored_representations`). 09, 12 and 14 use it."""
    out = {}
    for cue, template in cues.items():
        sub = table[table["cue"] == cue]
        out[cue] = condition_representation(
            model,
            stored,
            cue=cue,
            template=template,
            ids=list(sub["id"]),
            user_texts=list(sub["user_text"]),
            decoding=Decoding(max_new_tokens=T),
            lm_settings=lm_settings,
            first_layer=first_layer,
        )
    return out


def model_size_representations(
    names: Sequence[str],
    table: pd.DataFrame,
    cues: Mapping[str, str],
    stored: StoredRun,
    *,
    load_model: Callable[[str], lm.LLM],
    T: int,
    lm_settings: LMSettings,
    first_layer: int = 0,
) -> tuple[dict[str, tuple[list[str], np.ndarray]], pd.DataFrame, pd.DataFrame]:
    """Notebook 09: every LLM of ``names`` under every cue at ``T`` generated tokens, one model in memory at a time.

    ``table``: the run's prompts (:func:`helpers.data.prompts.build_prompts`); ``stored``: the run's
    generations, representation ids and arrays (:func:`helpers.data.artifacts.stored_representations`),
    so the run's own model is read from 03's prefix means (:func:`condition_representation`);
    ``lm_settings``: the run's (its ``llm`` is replaced by each name in turn).
    Returns ``"<llm>|<cue>" -> (ids, [items, hidden])``, one row per model (``llm``, ``n_params``,
    ``n_layers``, ``hidden_size``, ``chat_template``, ``dtype``, ``cues_from_03``, ``seconds``) and
    two example generations per (model, cue).
    """
    gens = stored.gens
    llm_reps, models, examples = {}, [], []
    for name in names:
        t0 = time.perf_counter()
        model = load_model(name)
        info = {
            "llm": name,
            "n_params": sum(p.numel() for p in model.model.parameters()),
            "n_layers": model.n_layers,
            "hidden_size": model.hidden_size,
            "chat_template": model.use_chat_template,
            "dtype": model.fingerprint["dtype"],
            "cues_from_03": 0,
        }
        conds = cue_conditions(
            model, table, cues, stored, T=T, lm_settings=lm_settings.replace(llm=name), first_layer=first_layer
        )
        for cue, cond in conds.items():
            llm_reps[f"{name}|{cue}"] = (cond.ids, cond.vector)
            info["cues_from_03"] += cond.stored_key is not None
            examples.append(condition_examples(cond, gens, model.tokenizer, T).assign(llm=name, cue=cue))
        info["seconds"] = round(time.perf_counter() - t0, 1)
        models.append(info)
        lm.free_llm(model)  # the next (possibly much larger) model needs the memory
        del model
    return llm_reps, pd.DataFrame(models), pd.concat(examples, ignore_index=True)


@dataclass
class RemovalConditions:
    """The removal ablation's representations (layer means ``[items, hidden]``, rows in ``ids`` order).

    ``full``: the unedited generations; ``edited``: ``remove_sensory`` (the sensory words taken
    out of the generated text) and ``remove_random`` (as many random words taken out, the control).
    An edit that leaves no tokens has no generative representation: such items are in ``dropped``
    and leave every removal comparison.
    """

    ids: list[str]
    dropped: list[str]
    full: np.ndarray
    edited: dict[str, np.ndarray]


def removal_conditions(
    model: lm.LLM,
    generations: pd.DataFrame,
    removal: pd.DataFrame,
    full_per_layer: np.ndarray | None = None,
    *,
    include_embeddings: bool = True,
    batch_size: int = 16,
) -> RemovalConditions:
    """Re-encode one cue's generations with words removed (notebook 08).

    ``generations``: the cue's rows of 02's table (``id``, ``prompt_ids``, ``gen_ids``, ``text``);
    ``removal``: :func:`helpers.analyses.ablations.removal_table` of the same items in the same order
    (``sensory_text``, ``control_text``); ``full_per_layer``: 03's ``[items, layers, hidden]`` of
    these generations when the run has it (else the unedited generations are re-encoded too).
    A text the edit leaves unchanged keeps its original tokens (no retokenisation noise).
    """
    ids = list(generations["id"])
    originals = generations[["prompt_ids", "gen_ids"]].to_dict("records")
    if full_per_layer is None:
        full_per_layer = np.stack(
            [
                r["gen_mean"]
                for r in lm.represent_cached(
                    model, originals, include_embeddings=include_embeddings, batch_size=batch_size
                )
            ]
        )
    edited = {}
    for name, col in (("remove_sensory", "sensory_text"), ("remove_random", "control_text")):
        new = edited_generations(model.tokenizer, generations["prompt_ids"], removal[col])
        edited[name] = [o if t == old else e for o, e, t, old in zip(originals, new, removal[col], generations["text"])]
    keep = [j for j in range(len(ids)) if all(len(e[j]["gen_ids"]) for e in edited.values())]
    means = {}
    for name, gens_edit in edited.items():
        reps = lm.represent_cached(
            model, [gens_edit[j] for j in keep], include_embeddings=include_embeddings, batch_size=batch_size
        )
        means[name] = layer_mean(np.stack([r["gen_mean"] for r in reps]))
    return RemovalConditions(
        ids=[ids[j] for j in keep],
        dropped=[ids[j] for j in range(len(ids)) if j not in set(keep)],
        full=layer_mean(full_per_layer[keep]),
        edited=means,
    )


# --------------------------------------------------------------------------------------
# Evaluating a cue template (the playground's Evaluate button)
# --------------------------------------------------------------------------------------
