"""Estimated GPU time of the paper profile per Qwen3 size (an estimate, not a measurement).

No GPU was available when this was written, so the numbers come from a simple model of
batched greedy decoding with our HF-eager loop in bfloat16 on one H100 (80 GB):

- one decoding step reads every weight once (memory-bound): ``2 x params / BW`` with an
  effective bandwidth ``BW`` (default 2.0 TB/s of the H100 SXM's 3.35 TB/s peak), plus a
  per-layer launch/Python overhead of the eager loop (default 0.15 ms per layer per step);
- a batch of ``B`` prompts advances ``B`` tokens per step; ``B`` is what
  :func:`helpers.lm.suggest_batch_size` would give for the KV cache (capped at 64 here);
- the teacher-forced representation pass is compute-bound: ``2 x params x tokens`` FLOPs at
  an effective 300 TFLOP/s (bf16 dense, ~30% of peak);
- the CPU column scales the *measured* SmolLM2-135M batched CPU rate (``--cpu-tok-s``,
  README: 238 tok/s, batch 32, 2 threads) by parameter count.

    .venv/bin/python benchmarks/estimate_gpu_time.py [--items 300] [--cues 3]
"""

from __future__ import annotations

import argparse

# name: (params, layers, kv_heads, head_dim) from the Qwen3 model cards / technical report
QWEN3 = {
    "Qwen3-0.6B": (0.6e9, 28, 8, 128),
    "Qwen3-1.7B": (1.7e9, 28, 8, 128),
    "Qwen3-4B": (4.0e9, 36, 8, 128),
    "Qwen3-8B": (8.2e9, 36, 8, 128),
    "Qwen3-14B": (14.8e9, 40, 8, 128),
    "Qwen3-32B": (32.8e9, 64, 8, 128),
}


def estimate(params, layers, kv_heads, head_dim, n_prompts, T, prompt_len, bw, overhead, flops, gpu_gb, max_batch):
    weights = 2 * params
    kv_per_seq = 2 * layers * kv_heads * head_dim * 2 * (prompt_len + T)
    free = max(gpu_gb * 1e9 * 0.9 - weights, 0)
    batch = int(max(1, min(max_batch, 0.7 * free // kv_per_seq)))
    step = weights / bw + layers * overhead + batch * kv_per_seq / 2 / bw  # weights + (mean) KV reads
    n_batches = -(-n_prompts // batch)
    gen_s = n_batches * T * step
    rep_s = 2 * params * n_prompts * (prompt_len + T) / flops
    return batch, gen_s, rep_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--cues", type=int, default=3)
    ap.add_argument("--prompt-len", type=int, default=40, help="tokens per chat-formatted prompt")
    ap.add_argument("--bandwidth", type=float, default=2.0e12, help="effective bytes/s")
    ap.add_argument("--overhead-ms", type=float, default=0.15, help="per layer per decoding step")
    ap.add_argument("--flops", type=float, default=3.0e14)
    ap.add_argument("--gpu-gb", type=float, default=80.0)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--cpu-tok-s", type=float, default=238.0, help="measured SmolLM2-135M batched CPU rate")
    args = ap.parse_args()
    n = args.items * args.cues
    print(f"{n} prompts ({args.items} items x {args.cues} cues), one H100 80 GB, bf16 -- ESTIMATES, not measured")
    print("| model | weights GB | batch | T=128 gen+rep | T=512 gen+rep | CPU T=128 (scaled) |")
    print("|---|---|---|---|---|---|")
    for name, (p, n_layers, kv, hd) in QWEN3.items():
        row = [name, f"{2 * p / 1e9:.0f}"]
        for T in (128, 512):
            b, g, r = estimate(
                p,
                n_layers,
                kv,
                hd,
                n,
                T,
                args.prompt_len,
                args.bandwidth,
                args.overhead_ms / 1e3,
                args.flops,
                args.gpu_gb,
                args.max_batch,
            )
            if T == 128:
                row.append(str(b))
            row.append(f"{(g + r) / 60:.1f} min")
        cpu_h = n * 128 / (args.cpu_tok_s * 135e6 / p) / 3600
        row.append(f"{cpu_h:.1f} h")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
