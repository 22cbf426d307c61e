"""The analysis options every alignment table shares, in one object.

Notebooks 05–10 score LLM representations against encoders with the same five options; they are
the notebook parameters of the same names (``helpers/run/profiles/default.yaml`` holds their defaults,
and a test checks that these equal them). Build one from a notebook's parameters and hand it to
every table::

    settings = AlignmentSettings(k=k, quantile=quantile, first_layer=first_layer, n_perm=n_perm, seed=seed)
    analysis.paired_cue_comparisons(ids, reps, encoder_feats, settings=settings)

``quantile`` is the outlier clamp of the Platonic Representation Hypothesis preprocessing, the
argument ``q`` of the leaf metrics in :mod:`helpers.metrics.alignment`. A leaf: no imports from helpers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class AlignmentSettings:
    """How alignment values and their statistics are computed.

    ``k``: neighbours per item in mutual k-NN (paper: 10). ``quantile``: features are clamped at
    this quantile of |x| before L2 normalisation (1 disables the clamp; paper: 0.95).
    ``first_layer``: the layer mean starts here (1 leaves the embedding output out). ``n_perm``:
    permutations per permutation null and draws of the cue search's max test. ``seed``: seeds both.
    (Intervals and paired tests are analytic, :mod:`helpers.metrics.knn_inference`: they need no resamples.)
    """

    k: int = 10
    quantile: float = 0.95
    first_layer: int = 0
    n_perm: int = 10000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("k", "first_layer", "n_perm", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"AlignmentSettings.{name} must be an integer, got {value!r}")
        if self.k < 1 or self.n_perm < 1 or self.first_layer < 0:
            raise ValueError(f"AlignmentSettings needs k, n_perm >= 1 and first_layer >= 0, got {self}")
        if not 0 < float(self.quantile) <= 1:
            raise ValueError(f"AlignmentSettings.quantile must be in (0, 1], got {self.quantile!r}")

    def replace(self, **changes: object) -> AlignmentSettings:
        """A copy with some options changed (e.g. ``settings.replace(k=5)``)."""
        return dataclasses.replace(self, **changes)


DEFAULT_SETTINGS = AlignmentSettings()

__all__ = ["AlignmentSettings", "DEFAULT_SETTINGS"]
