"""LLM representations against one encoder, over the items both cover: the one per-item mutual k-NN.

Every table that scores LLM vectors against an encoder pairs them the same way: the encoder's
items are matched to the LLM's by id (an audio encoder covers only the items with a sound), the
features of each side are prepared with :func:`helpers.metrics.alignment.prepare_features` over exactly
those items, and each item's k nearest neighbours are compared (:func:`helpers.metrics.alignment.overlap_from_knn`).
:class:`EncoderSpace` is that pairing, with the encoder's neighbourhoods computed once per k and
reused by every cue, kind, layer and prefix scored against it. Its users: the alignment tables of
05 and 09 (:func:`helpers.analyses.tables.alignment_table`), the length, layer, statistics and robustness
tables of 06 and 07 (:mod:`helpers.analyses.tables`), the paired ablations of 08
(:func:`helpers.analyses.ablations.paired_alignment`) and the playground's neighbour table
(:func:`helpers.analyses.neighbours.item_neighbours`).

numpy only, no I/O: above :mod:`helpers.metrics.alignment` and :mod:`helpers.metrics.knn_inference`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from helpers.metrics import alignment
from helpers.metrics.knn_inference import Overlaps

EncoderFeatures = Mapping[str, tuple[str, Sequence[str], np.ndarray]]
"""Encoder name → (modality, item ids, ``[items, dims]`` features), as :func:`helpers.data.artifacts.run_encoder_features` loads them."""


@dataclass
class EncoderSpace:
    """One encoder over the items it shares with an LLM id list, neighbourhoods cached per k.

    ``rows`` index the LLM arrays (in the order of the encoder's shared items), ``feats`` are the
    encoder's features of those items, ``ids`` their ids.
    """

    name: str
    modality: str
    ids: list[str]
    rows: np.ndarray
    feats: np.ndarray
    q: float
    _knn: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _prepared: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def over(
        cls, llm_ids: Sequence[str], name: str, modality: str, enc_ids: Sequence[str], feats: np.ndarray, q: float
    ) -> EncoderSpace:
        """The encoder ``name`` restricted to the items of ``llm_ids`` it covers, in ``llm_ids`` order."""
        llm_ids = [str(i) for i in llm_ids]
        ia, ib = alignment.match_rows(llm_ids, [str(i) for i in enc_ids])
        return cls(name, modality, [llm_ids[i] for i in ia], ia, np.asarray(feats)[ib], q)

    @property
    def n(self) -> int:
        """Items shared with the LLM."""
        return len(self.rows)

    def fits(self, k: int) -> bool:
        """Whether k neighbours exist (k < shared items)."""
        return 1 <= k < self.n

    def require(self, k: int, what: str) -> None:
        """Raise a ValueError naming ``what`` and this encoder when k does not fit."""
        if self.n <= k:
            raise ValueError(
                f"{what} × {self.name}: only {self.n} shared items, need more than k={k}; use more items or a smaller k"
            )

    @property
    def prepared(self) -> np.ndarray:
        """The encoder's features over the shared items, prepared as for every metric."""
        if self._prepared is None:
            self._prepared = alignment.prepare_features(self.feats, self.q)
        return self._prepared

    def knn(self, k: int) -> np.ndarray:
        """``[n, k]`` neighbour rows (into the shared items) of each shared item in the encoder's space."""
        if k not in self._knn:
            self._knn[k] = alignment.knn_indices(self.prepared, k)
        return self._knn[k]

    def prepare_llm(self, llm_vectors: np.ndarray) -> np.ndarray:
        """LLM vectors ``[all LLM items, hidden]`` restricted to the shared items and prepared."""
        return alignment.prepare_features(np.asarray(llm_vectors)[self.rows], self.q)

    def llm_knn(self, llm_vectors: np.ndarray, k: int) -> np.ndarray:
        """``[n, k]`` neighbour rows of each shared item in the LLM's space."""
        return alignment.knn_indices(self.prepare_llm(llm_vectors), k)

    def overlaps(self, llm_vectors: np.ndarray, k: int) -> Overlaps:
        """The LLM's hits at each item's k encoder-neighbour slots: what a score's interval and every
        paired test over this encoder need (:mod:`helpers.metrics.knn_inference`)."""
        return Overlaps.from_knn(self.llm_knn(llm_vectors, k), self.knn(k))

    def per_item(self, llm_vectors: np.ndarray, k: int) -> np.ndarray:
        """Per shared item, the fraction of its k LLM neighbours that are among its k encoder neighbours."""
        return self.overlaps(llm_vectors, k).per_item

    def chance(self, k: int) -> float:
        """k / (n − 1): the expected per-item overlap of two unrelated spaces."""
        return alignment.mutual_knn_chance(self.n, k)


def encoder_spaces(llm_ids: Sequence[str], encoder_feats: EncoderFeatures, q: float) -> list[EncoderSpace]:
    """One :class:`EncoderSpace` per encoder of ``encoder_feats``, over the items of ``llm_ids``."""
    return [
        EncoderSpace.over(llm_ids, name, modality, ids, feats, q)
        for name, (modality, ids, feats) in encoder_feats.items()
    ]


def usable(spaces: Sequence[EncoderSpace], k: int, what: str) -> list[EncoderSpace]:
    """The spaces with more than k shared items; the others are left out with a warning naming them."""
    for s in spaces:
        if not s.fits(k):
            warnings.warn(
                f"{what}: {s.name} shares only {s.n} items with the LLM, need more than k={k}; left out", stacklevel=2
            )
    return [s for s in spaces if s.fits(k)]


def common_rows(ids_a: Sequence[str], ids_b: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The ids two LLM arrays share (in ``ids_a`` order) and their rows in each."""
    ia, ib = alignment.match_rows([str(i) for i in ids_a], [str(i) for i in ids_b])
    return [str(ids_a[i]) for i in ia], ia, ib


__all__ = ["EncoderFeatures", "EncoderSpace", "common_rows", "encoder_spaces", "usable"]
