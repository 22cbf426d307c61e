"""A tiny random-weight BEATs checkpoint in the official format (``{"cfg": ..., "model": ...}``),
written with the project's own implementation (:mod:`helpers.encoders.beats`).

The config has the official checkpoints' structure (post-LN with deep norm, gated relative
position bias, 16x16 patches, a post-extraction projection because ``embed_dim`` differs from
the transformer width) at toy sizes: 2 layers, 32-d, 4 heads.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_BEATS_CFG = {
    "input_patch_size": 16,
    "embed_dim": 16,
    "conv_bias": False,
    "encoder_layers": 2,
    "encoder_embed_dim": 32,
    "encoder_ffn_embed_dim": 64,
    "encoder_attention_heads": 4,
    "activation_fn": "gelu",
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "relative_position_embedding": True,
    "num_buckets": 32,
    "max_distance": 128,
    "gru_rel_pos": True,
    "deep_norm": True,
    "layer_norm_first": False,
    # training-only fields that the official cfg also carries; ignored at inference
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "encoder_layerdrop": 0.05,
}


def save_tiny_beats(path: str | Path, seed: int = 0, **cfg_overrides) -> Path:
    """Write a 2-layer, 32-d BEATs checkpoint with random weights to ``path``.

    Besides PyTorch's default initialisation, biases, layer-norm gains and the gate scale
    ``grep_a`` get random values too, so no parameter sits at a value that would hide a
    wiring mistake (a zero bias or unit gain makes some misorderings invisible).
    ``cfg_overrides`` change the config (e.g. ``finetuned_model=True, predictor_class=5``).
    """
    from helpers.encoders.beats import BEATs, BeatsConfig

    torch.manual_seed(seed)
    cfg = {**TINY_BEATS_CFG, **cfg_overrides}
    model = BEATs(BeatsConfig.from_dict(cfg))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") and p.ndim == 1:
                p.normal_(0.0, 0.1)
            elif "layer_norm" in name or name.endswith("grep_a"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    path = Path(path)
    torch.save({"cfg": cfg, "model": model.state_dict()}, path)
    return path
