"""Sensory cue templates and the prompts built from them.

A *cue* is a named template with one ``{caption}`` slot. The paper's cues are SEE
and HEAR; NONE is the no-cue baseline. Templates are plain strings so a researcher
can edit them in the notebook parameters or the playground; :func:`build_prompts`
validates them and fills in the captions.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

import pandas as pd

DEFAULT_CUES: dict[str, str] = {
    "SEE": "Imagine what it would look like to see {caption}.",
    "HEAR": "Imagine what it would sound like to hear {caption}.",
    "NONE": "Imagine: {caption}.",
}

#: The paper's hypothesis in one table: each sensory cue, the word list of its sense (a lexicon is named
#: by the adjective, ``visual``/``auditory``: it lists visual words) and the encoder modality whose
#: alignment it should raise (``vision``/``audio``: the kind of encoder). Every analysis that pairs a
#: cue with a sense or a modality reads it here.
CUE_SENSES: dict[str, tuple[str, str]] = {"SEE": ("visual", "vision"), "HEAR": ("auditory", "audio")}
#: Encoder modality → the cue expected to raise alignment with it (the inverse of :data:`CUE_SENSES`).
MATCHED_CUE: dict[str, str] = {modality: cue for cue, (_, modality) in CUE_SENSES.items()}
#: The no-cue baseline every cue effect is measured against.
BASELINE_CUE = "NONE"


def check_template(name: str, template: str) -> None:
    """Raise ``ValueError`` unless ``template`` has exactly one ``{caption}`` field and nothing else."""
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    if fields != ["caption"]:
        raise ValueError(
            f"cue {name!r}: template must contain the field {{caption}} exactly once and no other "
            f"{{…}} fields (found {fields or 'none'}): {template!r}. Write literal braces as {{{{ and }}}}."
        )


def fill(template: str, caption: str) -> str:
    """The user-message text for one caption under one template."""
    return template.format(caption=caption)


def build_prompts(manifest: pd.DataFrame, cues: Mapping[str, str]) -> pd.DataFrame:
    """One row per (cue, item): ``cue``, ``template``, ``id``, ``caption``, ``user_text``.

    Empty captions are refused with the item named (they would make every cue identical).
    """
    if not cues:
        raise ValueError("no cues given; e.g. cues = {'SEE': 'Imagine what it would look like to see {caption}.'}")
    for name, template in cues.items():
        check_template(name, template)
    empty = manifest.loc[manifest["caption"].fillna("").astype(str).str.strip() == "", "id"].tolist()
    if empty:
        raise ValueError(f"empty caption for item(s) {empty[:5]}: fix the manifest (notebook 01) or drop them")
    rows = [
        {"cue": name, "template": template, "id": item, "caption": caption, "user_text": fill(template, caption)}
        for name, template in cues.items()
        for item, caption in zip(manifest["id"], manifest["caption"])
    ]
    return pd.DataFrame(rows, columns=["cue", "template", "id", "caption", "user_text"])
