"""A tiny random-weight BEATs checkpoint in the official format (``{"cfg": ..., "model": ...}``).

Needs SpeechBrain (and torchaudio): callers skip when :func:`helpers.paper_encoders.speechbrain_beats_class`
raises ImportError.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch

TINY_BEATS_CFG = {
    "input_patch_size": 16,
    "embed_dim": 16,
    "encoder_layers": 2,
    "encoder_embed_dim": 32,
    "encoder_ffn_embed_dim": 64,
    "encoder_attention_heads": 4,
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "relative_position_embedding": True,
    "num_buckets": 32,
    "max_distance": 128,
    "gru_rel_pos": True,
    "deep_norm": True,
    "layer_norm_first": False,
}


def save_tiny_beats(path: str | Path, seed: int = 0) -> Path:
    """Write a 2-layer, 32-d BEATs checkpoint with random weights to ``path``."""
    from helpers.paper_encoders import speechbrain_beats_class

    BEATs = speechbrain_beats_class()
    path = Path(path)
    stub = path.with_suffix(".cfg-only.pt")
    torch.save({"cfg": TINY_BEATS_CFG, "model": {}}, stub)
    torch.manual_seed(seed)
    # build the architecture from the config alone (the stub has no weights to load yet)
    with mock.patch.object(BEATs, "load_state_dict", lambda self, *a, **k: None):
        model = BEATs(ckp_path=str(stub))
    stub.unlink()
    torch.save({"cfg": TINY_BEATS_CFG, "model": model.state_dict()}, path)
    return path
