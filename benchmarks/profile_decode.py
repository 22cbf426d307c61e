"""Where batched decoding's time goes: prompt vs generated tokens, per-step time as the KV cache grows, and
the share of each kind of operation (matrix products, attention, the rest), from one profiled run.

    .venv/bin/python benchmarks/profile_decode.py [--model smollm2-135m-instruct] [--n-prompts 128] \
        [--max-new-tokens 128] [--batch-size 128] [--dtype float32]

Printed: the prefill (prompt) time and its share, decode ms/step at the start and end of the generation
(attention reads the whole KV cache each step, so it grows with length), tokens/s, the measured GEMM rate and
two utilisation figures: generated tokens/s against the compute roofline (2 FLOP per parameter per token),
and model FLOP utilisation counting the prompt tokens too (the work actually done); then the profiler's
self-CPU time grouped by kind of operation. The generation runs with EOS disabled (all T tokens).

Last, the ceiling this machine allows in this dtype: the wall time if everything were free except the
matrix products (their profiled time, at the rate they reach inside the model) and one read of the KV
cache per decode step at the measured memory read bandwidth (decode attention reads every cached key
and value once per step and does almost no arithmetic, so it is bound by memory). That time is a lower
bound on any exact implementation with these kernels; the printed "ceiling" is generated tokens over it.
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


def _read_bandwidth(n_bytes: int = 2**29, repeats: int = 3) -> float:
    """Bytes/s of reading a large float32 array once (best of ``repeats``): what decode attention is bound by."""
    x = torch.ones(n_bytes // 4)
    x.sum()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - t0)
    return n_bytes / best


def _kv_bytes_read(llm: L.LLM, prompt_ids: list[list[int]], T: int, batch_size: int) -> int:
    """Bytes of keys and values decode attention reads over a generation of all T tokens: at each step every
    layer reads its whole cache (the batch's padded prompt width plus the tokens so far) for every row."""
    cfg = llm.model.config
    cfg = getattr(cfg, "text_config", cfg)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    per_position = (
        2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * next(llm.model.parameters()).element_size()
    )
    lengths = sorted(len(p) for p in prompt_ids)
    total = 0
    for s in range(0, len(lengths), batch_size):
        rows, width = lengths[s : s + batch_size], max(lengths[s : s + batch_size])
        total += sum(len(rows) * (width + step + 1) for step in range(T - 1)) * per_position
    return total


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
    print(
        f"{args.model} ({params / 1e6:.0f} M parameters, {llm.fingerprint['dtype']}), {args.n_prompts} prompts, "
        f"batch {args.batch_size}, T = {args.max_new_tokens}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"wall {wall:.1f} s (profiler on): prefill {prefill:.1f} s = {100 * prefill / wall:.0f} % "
        f"({prompt_tokens} prompt tokens, {prompt_tokens / args.n_prompts:.0f} per prompt); decode "
        f"{1e3 * sum(steps[:k]) / k:.0f} ms/step over the first {k} steps, {1e3 * sum(steps[-k:]) / k:.0f} ms/step "
        f"over the last {k}"
    )
    print(
        f"generated {gen_tokens / wall:.0f} tok/s; {str(dtype).removeprefix('torch.')} GEMM rate {rate / 1e9:.0f} GFLOP/s -> compute roofline "
        f"{roofline:.0f} tok/s: generated tokens at {100 * gen_tokens / wall / roofline:.0f} % of it, all tokens "
        f"(prompt + generated) at {100 * (gen_tokens + prompt_tokens) / wall / roofline:.0f} % (model FLOP utilisation)"
    )
    total = defaultdict(float)
    for e in prof.key_averages():
        total[_kind(e.key)] += e.self_cpu_time_total / 1e6
    whole = sum(total.values())
    for kind, s in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<62} {s:7.1f} s  {100 * s / whole:4.0f} %")
    mm = total[next(iter(KINDS))] * wall / whole  # the products' share of the wall time
    kv, bw = (
        _kv_bytes_read(llm, L.encode_prompts(llm, prompts), args.max_new_tokens, args.batch_size),
        _read_bandwidth(),
    )
    floor = mm + kv / bw
    linear = sum(m.weight.numel() for m in llm.model.modules() if isinstance(m, torch.nn.Linear))
    head = llm.model.get_output_embeddings().weight.numel()  # the prompt's logits are not computed (but its last)
    ideal = 2 * (linear * gen_tokens + (linear - head) * prompt_tokens) / rate + kv / bw
    print(
        f"ceiling: matrix products {mm:.1f} s + reading the KV cache once per step ({kv / 1e9:.0f} GB at "
        f"{bw / 1e9:.1f} GB/s) {kv / bw:.1f} s = at least {floor:.1f} s, at most {gen_tokens / floor:.0f} generated "
        f"tok/s = {100 * gen_tokens / floor / roofline:.0f} % of the roofline (reached {100 * gen_tokens / wall / roofline:.0f} %); "
        f"with every product at the square-GEMM rate: {100 * gen_tokens / ideal / roofline:.0f} %"
    )


if __name__ == "__main__":
    main()
