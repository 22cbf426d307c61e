"""Throughput of the embedded-profile encoders on this machine (CPU).

    python benchmarks/bench_encoders.py [--images 64] [--batch-size 16] [--only aisfx,whisper-base]

EfficientNet-Lite2: images/s over synthetic 320x320 PNGs (decode + preprocess + forward).
aiSFX and Whisper-base: clips/s and real-time factor (compute seconds per second of
audio; < 1 is faster than real time) over the shared AudioCaps and Clotho sample clips,
including decoding and resampling. Model loading is timed separately and one warm-up
item is run first. No cache is used.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from helpers.core.paths import shared_data_root  # noqa: E402
from helpers.data.media import load_audio  # noqa: E402
from helpers.encoders.embedded import load_encoder  # noqa: E402


def synthetic_images(folder: Path, n: int, size: int = 320) -> list[Path]:
    from PIL import Image, ImageDraw

    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
        d = ImageDraw.Draw(im)
        for _ in range(10):
            x0, y0 = (int(v) for v in rng.integers(0, size - 40, 2))
            w, h = (int(v) for v in rng.integers(30, 140, 2))
            d.ellipse([x0, y0, x0 + w, y0 + h], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        paths.append(folder / f"img{i:03d}.png")
        im.save(paths[-1])
    return paths


def shared_clips() -> list[Path]:
    root = shared_data_root()
    clips = sorted((root / "audiocaps_sample" / "audio").glob("*.wav")) + sorted(
        (root / "clotho_sample" / "audio").glob("*.wav")
    )
    if not clips:
        sys.exit(f"no AudioCaps/Clotho clips under {root}; set PERCEIVE_SHARED")
    return clips


def bench(name: str, paths: list[Path], batch_size: int, audio_seconds: float | None = None, **options) -> None:
    t0 = time.perf_counter()
    enc = load_encoder(name, batch_size=batch_size, **options)
    _ = enc.model
    load_s = time.perf_counter() - t0
    enc.embed(paths[:1])  # warm-up (allocator, thread pools)
    t0 = time.perf_counter()
    emb = enc.embed(paths)
    dt = time.perf_counter() - t0
    assert emb.shape == (len(paths), enc.dim) and np.isfinite(emb).all()
    unit = "images" if enc.modality == "vision" else "clips"
    line = f"{name:<20} {len(paths):>4} {unit:<6} batch {batch_size:>2}  load {load_s:5.2f} s  embed {dt:6.2f} s  {len(paths) / dt:6.2f} {unit}/s"
    if audio_seconds:
        line += f"  RTF {dt / audio_seconds:.4f} ({audio_seconds / dt:.0f}x real time, {audio_seconds:.0f} s of audio)"
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--only", default="efficientnet-lite2,aisfx,whisper-base")
    args = ap.parse_args()
    only = set(args.only.split(","))

    import torch

    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    if "efficientnet-lite2" in only:
        with tempfile.TemporaryDirectory() as tmp:
            bench("efficientnet-lite2", synthetic_images(Path(tmp), args.images), args.batch_size)
    clips = shared_clips()
    for name in ("aisfx", "whisper-base"):
        if name not in only:
            continue
        max_s = 30.0
        seconds = sum(len(load_audio(c, 16000, max_s)) / 16000 for c in clips)
        bench(
            name,
            clips,
            min(args.batch_size, 8) if name == "whisper-base" else args.batch_size,
            seconds,
            max_seconds=max_s,
        )


if __name__ == "__main__":
    main()
