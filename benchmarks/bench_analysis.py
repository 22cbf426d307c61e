"""Cost of notebooks 06 and 07's analyses at the embedded default's shapes (no models, synthetic arrays).

    python benchmarks/bench_analysis.py [--items 300] [--audio-items 101] [--n-perm 10000]

The default run's arrays: 3 cues × (gen_mean, prompt_last, prompt_mean, 4 prefixes) of
[300 items, 31 layers, 576 hidden]; a 1280-d vision encoder over all items and two audio
encoders (aiSFX 512-d, Whisper-base 512-d) over the 101 items with a sound. Prints seconds
per analysis with the default parameters (k = 10, robustness k ∈ {5, 10, 20}, CKNNA and CKA).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from helpers.analyses import tables  # noqa: E402
from helpers.core.settings import AlignmentSettings  # noqa: E402


def synthetic_run(n: int, n_audio: int, layers: int = 31, hidden: int = 576, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"i{i}" for i in range(n)]
    shared = rng.normal(size=(n, 64))  # some common structure, so scores are above chance
    reps = {}
    for cue in ("SEE", "HEAR", "NONE"):
        mix = rng.normal(size=(64, hidden))
        for kind in ("gen_mean", "prompt_last", "prompt_mean", "prefix_T8", "prefix_T16", "prefix_T32", "prefix_T64"):
            base = shared @ mix + 3 * rng.normal(size=(n, hidden))
            reps[f"{cue}/{kind}"] = (base[:, None, :] + rng.normal(size=(n, layers, hidden))).astype(np.float32)
    feats = {
        "vision": (
            "vision",
            ids,
            (shared @ rng.normal(size=(64, 1280)) + 3 * rng.normal(size=(n, 1280))).astype(np.float32),
        ),
    }
    for name in ("audio1", "audio2"):
        x = shared[:n_audio] @ rng.normal(size=(64, 512)) + 3 * rng.normal(size=(n_audio, 512))
        feats[name] = ("audio", ids[:n_audio], x.astype(np.float32))
    lengths = {cue: rng.integers(20, 129, size=n) for cue in ("SEE", "HEAR", "NONE")}
    return ids, reps, feats, lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--audio-items", type=int, default=101)
    parser.add_argument("--n-perm", type=int, default=10000)
    args = parser.parse_args()
    ids, reps, feats, lengths = synthetic_run(args.items, args.audio_items)
    settings = AlignmentSettings(k=10, quantile=0.95, first_layer=0, n_perm=args.n_perm)
    print(
        f"{platform.processor() or platform.machine()}, {args.items} items ({args.audio_items} with audio), "
        f"n_perm={args.n_perm}"
    )
    steps = {
        "06 length_curve": lambda: tables.length_curve(
            ids, reps, feats, gen_lengths=lengths, full_T=128, settings=settings
        ),
        "06 layerwise": lambda: tables.layerwise(ids, reps, feats, settings=settings),
        "06 single_vs_generative": lambda: tables.single_vs_generative(ids, reps, feats, settings=settings),
        "07 permutation_table": lambda: tables.permutation_table(ids, reps, feats, settings=settings),
        "07 paired_cue_comparisons": lambda: tables.paired_cue_comparisons(ids, reps, feats, settings=settings),
        "07 robustness": lambda: tables.robustness(
            ids, reps, feats, ks=(5, 10, 20), metrics=("cknna", "unbiased_cka"), settings=settings
        ),
    }
    total = 0.0
    for name, fn in steps.items():
        t0 = time.perf_counter()
        table = fn()
        dt = time.perf_counter() - t0
        total += dt
        print(f"{name:<28} {dt:7.2f} s  ({len(table)} rows)")
    print(f"{'total':<28} {total:7.2f} s")


if __name__ == "__main__":
    main()
