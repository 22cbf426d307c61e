"""A stand-in for a GPU user's machine, built offline: the paper's models and data where the
paper profiles look for them, with tiny random weights.

- ``Qwen/Qwen3-0.6B`` and ``Qwen/Qwen3-1.7B``: tiny Qwen3-architecture models (config +
  safetensors + a Qwen3-style chat template with ``enable_thinking``) in a Hugging Face hub
  cache (``<world>/hf/hub/models--Qwen--Qwen3-0.6B/snapshots/<commit>/``), so the profiles'
  hub ids resolve offline exactly as real downloads would;
- ``facebook/dinov2-base``: a tiny DINOv2 in the same hub cache;
- ``BEATs_iter3_plus_AS2M.pt``: a tiny BEATs checkpoint in the official format;
- ``wit_1024/``: a local copy of ``minhuh/prh@wit_1024`` in its schema (Parquet, ``image`` +
  ``text``), drawn scenes with captions;
- the real AudioCaps and Clotho samples of ``../shared/data`` (read in place, never copied).

:func:`paper_tiny_params` gives the overrides a ``paper-tiny*`` run needs on top of its profile
(paths only: every ``auto`` of the paper profiles stays ``auto``), :func:`world_env` the
environment (``HF_HOME``, offline switches) the runner and its kernels need.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import torch
from tiny_beats import save_tiny_beats
from tiny_models import save_tiny_qwen3_thinking

QWEN_IDS = ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B")
DINO_ID = "facebook/dinov2-base"
PROFILES = ("paper-tiny", "paper-tiny-audiocaps", "paper-tiny-clotho")


def _commit(repo_id: str) -> str:
    """The commit a tiny stand-in is cached under: the paper profile's pinned ``llm_revision`` for its
    ``llm`` (so the paper chain loads at the pin, as a GPU user's run does), a made-up one for the rest."""
    from helpers.run.runner import load_profile

    paper = load_profile("paper")
    if repo_id == paper["llm"] and paper.get("llm_revision"):
        return str(paper["llm_revision"])
    return hashlib.sha1(repo_id.encode()).hexdigest()


def install_in_hub_cache(folder: Path, repo_id: str, hub: Path) -> Path:
    """Lay ``folder``'s files out as the hub cache keeps a download of ``repo_id`` at one commit."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    commit = _commit(repo_id)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        shutil.copy2(f, snap / f.name)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snap


def _tiny_dino(directory: Path) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(11)
    cfg = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, patch_size=14, image_size=56
    )
    Dinov2Model(cfg).save_pretrained(directory)
    return directory


def _wit_copy(directory: Path, n: int = 24) -> Path:
    """``n`` drawn scenes with captions, as Parquet in the PRH schema (``image`` bytes + ``text`` list)."""
    import datasets
    from PIL import Image, ImageDraw

    colours = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}
    shapes = ["circle", "square", "stripe"]
    images, texts = [], []
    rng = np.random.default_rng(0)
    for i in range(n):
        colour = list(colours)[i % 4]
        shape = shapes[(i // 4) % 3]
        im = Image.new("RGB", (64 + 4 * (i % 5), 64), tuple(int(c) for c in rng.integers(0, 60, 3)))
        d = ImageDraw.Draw(im)
        box = (8 + i % 7, 8, 50, 50 - i % 5)
        if shape == "circle":
            d.ellipse(box, fill=colours[colour])
        elif shape == "square":
            d.rectangle(box, fill=colours[colour])
        else:
            for x in range(4, 60, 12):
                d.rectangle((x, 0, x + 5, 63), fill=colours[colour])
        images.append(im)
        texts.append([f"a {colour} {shape} on a dark ground, picture {i}", f"reference {i}"])
    feats = datasets.Features({"image": datasets.Image(), "text": datasets.Sequence(datasets.Value("string"))})
    ds = datasets.Dataset.from_dict({"image": images, "text": texts}, features=feats)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(directory / "data" / "train-00000-of-00001.parquet"))
    return directory


def build_world(root: Path) -> dict[str, Path]:
    """Everything the paper-tiny profiles need, under ``root``; returns the named locations."""
    hub = root / "hf" / "hub"
    for i, repo_id in enumerate(QWEN_IDS):  # the "larger" model is wider and deeper
        folder = save_tiny_qwen3_thinking(
            root / "build" / repo_id.replace("/", "--"), seed=3 + i, hidden_size=32 + 16 * i, layers=3 + i
        )
        install_in_hub_cache(folder, repo_id, hub)
    install_in_hub_cache(_tiny_dino(root / "build" / "dinov2"), DINO_ID, hub)
    (root / "models").mkdir(parents=True, exist_ok=True)
    beats = save_tiny_beats(root / "models" / "BEATs_iter3_plus_AS2M.pt")
    wit = _wit_copy(root / "wit_1024")
    shutil.rmtree(root / "build")
    return {"hf_home": root / "hf", "beats": beats, "wit": wit}


def world_env(world: dict[str, Path]) -> dict[str, str]:
    """Environment for a run in the world: its hub cache, and nothing fetched from outside."""
    return {
        "HF_HOME": str(world["hf_home"]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }


def paper_tiny_params(profile: str, world: dict[str, Path], shared_data: Path) -> dict:
    """The local paths a ``paper-tiny*`` profile run takes (as a GPU user passes them with --param)."""
    if profile == "paper-tiny":
        return {"dataset_dir": str(world["wit"])}
    beats = {"beats": {"checkpoint": str(world["beats"]), "layer": -1}}
    if profile == "paper-tiny-audiocaps":
        d = shared_data / "audiocaps_sample"
        return {"dataset_csv": str(d / "captions.csv"), "dataset_dir": str(d / "audio"), "encoder_options": beats}
    if profile == "paper-tiny-clotho":
        d = shared_data / "clotho_sample"
        return {
            "dataset_csv": str(d / "clotho_captions_evaluation.csv"),
            "dataset_dir": str(d / "audio"),
            "encoder_options": beats,
        }
    raise ValueError(f"not a paper-tiny profile: {profile!r}")
