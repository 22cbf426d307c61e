"""One item's nearest neighbours under the LLM representation and under each encoder.

Mutual k-NN alignment is the mean over items of the fraction of an item's k neighbours that the
two spaces share; :func:`item_neighbours` shows that fraction for one item, neighbour by neighbour
(the playground's neighbour table), over the items both spaces cover and with the features
prepared exactly as :func:`helpers.analyses.tables.alignment_table` prepares them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from helpers.core.settings import DEFAULT_SETTINGS, AlignmentSettings
from helpers.metrics import alignment
from helpers.metrics.pairing import EncoderFeatures, encoder_spaces


def item_neighbours(
    item_id: str,
    llm_space: tuple[Sequence[str], np.ndarray],
    encoder_feats: EncoderFeatures,
    *,
    settings: AlignmentSettings = DEFAULT_SETTINGS,
) -> pd.DataFrame:
    """``item_id``'s k nearest neighbours under the LLM representation and under each encoder.

    For each encoder the neighbours are taken among the items both spaces cover (what
    :func:`helpers.analyses.tables.alignment_table` compares), features prepared exactly as there.
    One row per (encoder, space, rank): ``encoder``, ``modality``, ``space`` (``"LLM"`` or
    ``"encoder"``), ``rank`` (1 = nearest), ``id``, ``similarity`` (cosine) and ``shared``
    (the neighbour is among the item's k neighbours in the other space too). The item's
    mutual k-NN score for an encoder is the mean of ``shared`` over its rows of one space.
    Encoders that do not cover the item are left out (the table then has none of their rows).
    """
    k, q = settings.k, settings.quantile
    llm_ids, llm_x = list(llm_space[0]), np.asarray(llm_space[1])
    if item_id not in llm_ids:
        raise KeyError(f"item {item_id!r} has no LLM representation in this run (it has {len(llm_ids)} items)")
    rows = []
    for space in encoder_spaces(llm_ids, encoder_feats, q):
        if item_id not in space.ids:
            continue
        space.require(k, "the LLM representation")
        row = space.ids.index(item_id)
        prepared = {"LLM": space.prepare_llm(llm_x), "encoder": space.prepared}
        nn = {"LLM": alignment.knn_indices(prepared["LLM"], k)[row], "encoder": space.knn(k)[row]}
        for name, x in prepared.items():
            other = set(nn["encoder" if name == "LLM" else "LLM"].tolist())
            for rank, j in enumerate(nn[name], start=1):
                rows.append(
                    {
                        "encoder": space.name,
                        "modality": space.modality,
                        "space": name,
                        "rank": rank,
                        "id": space.ids[j],
                        "similarity": float(x[row] @ x[j]),
                        "shared": int(j) in other,
                    }
                )
    return pd.DataFrame(rows, columns=["encoder", "modality", "space", "rank", "id", "similarity", "shared"])


def neighbour_overlap(table: pd.DataFrame) -> pd.DataFrame:
    """Per encoder, the item's mutual k-NN score (fraction of LLM neighbours shared with the encoder's)."""
    llm = table[table["space"] == "LLM"]
    return (
        llm.groupby("encoder", sort=False)
        .agg(modality=("modality", "first"), k=("rank", "size"), mutual_knn=("shared", "mean"))
        .reset_index()
    )


__all__ = ["item_neighbours", "neighbour_overlap"]
