"""The options a run's steps share, as two objects read from the notebook parameters in one call.

:class:`LMSettings`: how the language model is loaded and run (name, device, dtype, hub revision,
thinking mode, batch sizes, whether the embedding output counts as a layer), what notebooks 02, 03,
08–10 and 12–14 hand to every generation and representation. :class:`AlignmentSettings`: how
alignment is scored. ``LMSettings.from_params(globals())`` in a notebook picks the parameters of
the same names (``llm_device`` → ``device`` and so on) and leaves the rest at their defaults.

Notebooks 05–10 score LLM representations against encoders with the same five options; they are
the notebook parameters of the same names (``helpers/run/profiles/default.yaml`` holds their defaults,
and a test checks that these equal them). Build one from a notebook's parameters and hand it to
every table::

    settings = AlignmentSettings.from_params(globals())  # k, quantile, first_layer, n_perm, seed
    tables.paired_cue_comparisons(ids, reps, encoder_feats, settings=settings)

``quantile`` is the outlier clamp of the Platonic Representation Hypothesis preprocessing, the
argument ``q`` of the leaf metrics in :mod:`helpers.metrics.alignment`. A leaf: no imports from helpers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


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

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AlignmentSettings:
        """The settings named in ``params`` (a notebook's ``globals()``, a profile); the rest at their defaults."""
        return cls(**{f.name: params[f.name] for f in dataclasses.fields(cls) if f.name in params})


DEFAULT_SETTINGS = AlignmentSettings()


@dataclass(frozen=True)
class LMSettings:
    """How a run's language model is loaded, generates and is read.

    ``llm``: a registry name, Hugging Face id or local folder. ``device`` / ``dtype``: where and in
    what precision it runs (:func:`helpers.core.runtime.resolve_device`; ``dtype`` None is float32 on
    CPU, bfloat16 elsewhere). ``revision``: the hub commit to load (None: the cached snapshot, recorded
    in the cache keys and printed by notebook 02). ``enable_thinking``: the Qwen3 chat template's thinking
    mode. ``gen_batch_size`` / ``rep_batch_size``: prompts per generation / representation batch, or
    ``"auto"`` (from free accelerator memory). ``include_embeddings``: the embedding output counts as
    layer 0 of the representations. Defaults are those of ``default.yaml`` (a test checks).
    """

    llm: str = "smollm2-135m-instruct"
    device: str = "cpu"
    dtype: str | None = None
    revision: str | None = None
    enable_thinking: bool = False
    gen_batch_size: int | str = 128
    rep_batch_size: int | str = 16
    include_embeddings: bool = True

    #: notebook parameter → field, where the two names differ
    PARAMETER_NAMES: ClassVar[dict[str, str]] = {
        "llm_device": "device",
        "llm_dtype": "dtype",
        "llm_revision": "revision",
    }

    def __post_init__(self) -> None:
        for name in ("gen_batch_size", "rep_batch_size"):
            value = getattr(self, name)
            ok = value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
            if not ok:
                raise ValueError(f"LMSettings.{name} must be a positive integer or 'auto', got {value!r}")
        for name in ("enable_thinking", "include_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"LMSettings.{name} must be True or False, got {getattr(self, name)!r}")

    def replace(self, **changes: object) -> LMSettings:
        """A copy with some options changed (e.g. ``lm_settings.replace(llm="gemma-3-270m-it")``)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def parameter(cls, field_name: str) -> str:
        """The notebook parameter that sets ``field_name`` (``device`` → ``llm_device``)."""
        return {v: k for k, v in cls.PARAMETER_NAMES.items()}.get(field_name, field_name)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LMSettings:
        """The settings named in ``params`` (a notebook's ``globals()``, a profile); the rest at their defaults."""
        fields = [f.name for f in dataclasses.fields(cls)]
        return cls(**{f: params[cls.parameter(f)] for f in fields if cls.parameter(f) in params})


DEFAULT_LM_SETTINGS = LMSettings()

__all__ = ["AlignmentSettings", "DEFAULT_LM_SETTINGS", "DEFAULT_SETTINGS", "LMSettings"]
