"""Where batched decoding's time goes: prompt vs generated tokens, per-step time as the KV cache grows, and
the share of each kind of operation (matrix products, attention, the rest), from one profiled run.

    .venv/bin/python benchmarks/profile_decode.py [--model smollm2-135m-instruct] [--n-prompts 128] \
        [--max-new-tokens 128] [--batch-size 128] [--dtype float32]

Printed: the prefill (prompt) time and its share, decode ms/step at the start and end of the generation
(attention reads the whole KV cache each step, so it grows with length), tokens/s, the measured GEMM rate and
two utilisation figures: generated tokens/s against the compute roofline (2 FLOP per parameter per token),
and model FLOP utilisation counting the prompt tokens too (the work actually done); then the profiler's
self-CPU time grouped by kind of operation. The generation runs with EOS disabled (all T tokens).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PERCEIVE_HEADLESS", "1")

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_fused import _gemm_rate, _prompts  # noqa: E402

from helpers import lm as L  # noqa: E402

KINDS = {
    "matrix products (linear layers, LM head)": ("aten::mm", "aten::addmm", "aten::linear", "aten::matmul"),
    "attention (reads the KV cache)": ("scaled_dot_product", "aten::bmm", "aten::_softmax"),
}


def _kind(name: str) -> str:
    for kind, marks in KINDS.items():
        if any(m in name for m in marks):
            return kind
    return "everything else (norms, rotary, activations, copies, sampling)"


def _timed_forwards(llm: L.LLM) -> list[tuple[int, float]]:
    """Wrap the model's forward to record (tokens fed per row, seconds) per call."""
    calls: list[tuple[int, float]] = []
    inner = llm.model.forward

    def forward(*args, **kwargs):
        t0 = time.perf_counter()
        out = inner(*args, **kwargs)
        calls.append((int(kwargs["input_ids"].shape[1]), time.perf_counter() - t0))
        return out

    llm.model.forward = forward
    return calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=L.EMBEDDED_DEFAULT)
    ap.add_argument("--n-prompts", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16")
    args = ap.parse_args()
    llm = dataclasses.replace(L.load_llm(args.model, dtype=args.dtype), eos_token_ids=())
    prompts = _prompts(llm, args.n_prompts)
    L.generate(llm, prompts[:2], 2, batch_size=2, show_progress=False)  # warm-up
    calls = _timed_forwards(llm)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        L.generate(llm, prompts, args.max_new_tokens, batch_size=args.batch_size, show_progress=False)
        wall = time.perf_counter() - t0
    prompt_tokens = sum(len(p) for p in L.encode_prompts(llm, prompts))
    gen_tokens = args.n_prompts * args.max_new_tokens
    prefill = sum(s for n, s in calls if n > 1)
    steps = [s for n, s in calls if n == 1]
    k = max(1, len(steps) // 8)
    params = sum(p.numel() for p in llm.model.parameters())
    dtype = next(llm.model.parameters()).dtype
    rate = _gemm_rate(dtype=dtype)
    roofline = rate / (2 * params)
    print(f"{args.model} ({params / 1e6:.0f} M parameters, {llm.fingerprint['dtype']}), {args.n_prompts} prompts, "
          f"batch {args.batch_size}, T = {args.max_new_tokens}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"wall {wall:.1f} s (profiler on): prefill {prefill:.1f} s = {100 * prefill / wall:.0f} % "
          f"({prompt_tokens} prompt tokens, {prompt_tokens / args.n_prompts:.0f} per prompt); decode "
          f"{1e3 * sum(steps[:k]) / k:.0f} ms/step over the first {k} steps, {1e3 * sum(steps[-k:]) / k:.0f} ms/step "
          f"over the last {k}")
    print(f"generated {gen_tokens / wall:.0f} tok/s; {str(dtype).removeprefix('torch.')} GEMM rate {rate / 1e9:.0f} GFLOP/s -> compute roofline "
          f"{roofline:.0f} tok/s: generated tokens at {100 * gen_tokens / wall / roofline:.0f} % of it, all tokens "
          f"(prompt + generated) at {100 * (gen_tokens + prompt_tokens) / wall / roofline:.0f} % (model FLOP utilisation)")
    total = defaultdict(float)
    for e in prof.key_averages():
        total[_kind(e.key)] += e.self_cpu_time_total / 1e6
    whole = sum(total.values())
    for kind, s in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<62} {s:7.1f} s  {100 * s / whole:4.0f} %")


if __name__ == "__main__":
    main()
