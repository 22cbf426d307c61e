"""Generation + generative representations: this package against the ways peers do it, in one run.

Four approaches over the same prompts, T and batch size, each in its own process (so that its
peak resident memory is its own), best wall time of ``--repeats`` runs:

- ``package two-pass``: :func:`helpers.lm.generate`, then the streaming teacher-forced pass
  :func:`helpers.lm.represent` (what notebooks 02 and 03 do today);
- ``package fused``: :func:`helpers.lm.generate_and_represent` (states reduced while decoding);
- ``HF generate + forward``: ``model.generate``, then one forward pass with
  ``output_hidden_states=True`` over prompt + generation (the follow-up study's way);
- ``HF generate(output_hidden_states)``: the per-step hidden-state tuples of ``generate``, reduced.

Every approach generates all T tokens (EOS disabled), so the work is the same. Also printed: the
measured fp32 GEMM rate, the compute roofline for the model (2 FLOP per parameter per token) and
the fraction of it that batched decoding reaches, the rate of the model's own matrix products at the
benchmark's batch size (a tighter bound: decoding streams each weight once per step) and the load
average (the machines are shared).

    .venv/bin/python benchmarks/bench_fused.py [--n-prompts 64] [--max-new-tokens 128] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PERCEIVE_HEADLESS", "1")

import torch

from helpers import lm as L

APPROACHES = ("package two-pass", "package fused", "HF generate + forward", "HF generate(output_hidden_states)")
CAPTIONS = [
    "a red fire truck", "a cat sleeping on a sofa", "a lighthouse at sunset", "a bowl of ramen with chopsticks",
    "two children playing soccer in a park", "a thunderstorm over the ocean", "a neon sign in the rain",
    "a woman playing the violin on stage", "a train crossing a stone bridge", "a field of sunflowers",
    "a dog barking at a passing car", "church bells ringing in a valley", "a kettle whistling on a stove",
    "waves crashing against rocks", "a crowded farmers market", "a parrot sitting on a branch",
]


def _prompts(llm: L.LLM, n: int) -> list[str]:
    cues = ("Imagine what it would look like to see {}.", "Imagine what it would sound like to hear {}.", "Imagine: {}.")
    texts = [c.format(x) for x in CAPTIONS for c in cues]
    return [L.format_prompt(llm, t) for t in (texts * (n // len(texts) + 1))[:n]]


def _package(llm: L.LLM, prompts: list[str], T: int, bs: int, fused: bool) -> int:
    if fused:
        out = L.generate_and_represent(llm, prompts, L.Decoding(max_new_tokens=T), batch_size=bs, show_progress=False)
        return sum(len(o["gen_ids"]) for o in out)
    gens = L.generate(llm, prompts, T, batch_size=bs, show_progress=False)
    L.represent(llm, [g["prompt_ids"] for g in gens], [g["gen_ids"] for g in gens], batch_size=16, show_progress=False)
    return sum(len(g["gen_ids"]) for g in gens)


@torch.inference_mode()
def _hf(llm: L.LLM, prompts: list[str], T: int, bs: int, in_generate: bool) -> int:
    """Per-layer means over the generated tokens, the way the peers compute them (all layers kept)."""
    tok, model, n = llm.tokenizer, llm.model, 0
    tok.padding_side = "left"
    for s in range(0, len(prompts), bs):
        enc = tok(prompts[s : s + bs], return_tensors="pt", padding=True, add_special_tokens=not llm.use_chat_template)
        kw = dict(max_new_tokens=T, min_new_tokens=T, do_sample=False, pad_token_id=tok.pad_token_id)
        if in_generate:
            out = model.generate(**enc, **kw, output_hidden_states=True, return_dict_in_generate=True)
            # step 0 holds the prompt's states; steps 1.. one new token each (the last token is never fed)
            steps = out.hidden_states[1:]
            means = [torch.stack([h[:, -1] for h in layer_states]).mean(0) for layer_states in zip(*steps)]
            n += out.sequences.shape[0] * (out.sequences.shape[1] - enc["input_ids"].shape[1])
        else:
            seq = model.generate(**enc, **kw)
            mask = torch.cat([enc["attention_mask"], torch.ones_like(seq[:, enc["input_ids"].shape[1] :])], dim=1)
            hs = model(input_ids=seq, attention_mask=mask, output_hidden_states=True).hidden_states
            means = [h[:, enc["input_ids"].shape[1] :].mean(1) for h in hs]
            n += seq.shape[0] * (seq.shape[1] - enc["input_ids"].shape[1])
        assert len(means) == llm.n_layers + 1
    return n


def _child(approach: str, args: argparse.Namespace) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    llm = dataclasses.replace(L.load_llm(args.model), eos_token_ids=())  # all T tokens, as the HF peers (min_new_tokens)
    prompts = _prompts(llm, args.n_prompts)
    L.generate(llm, prompts[:2], 2, batch_size=2, show_progress=False)  # warm-up
    t0 = time.perf_counter()
    if approach.startswith("package"):
        n = _package(llm, prompts, args.max_new_tokens, args.batch_size, fused=approach == "package fused")
    else:
        n = _hf(llm, prompts, args.max_new_tokens, args.batch_size, in_generate="output_hidden_states" in approach)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB
    params = sum(p.numel() for p in llm.model.parameters())
    print(json.dumps({"seconds": dt, "tokens": n, "peak_rss_gib": rss, "params": params}))


def _generation_only(args: argparse.Namespace) -> float:
    llm = dataclasses.replace(L.load_llm(args.model), eos_token_ids=())
    prompts = _prompts(llm, args.n_prompts)
    L.generate(llm, prompts[:2], 2, batch_size=2, show_progress=False)
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        L.generate(llm, prompts, args.max_new_tokens, batch_size=args.batch_size, show_progress=False)
        best = min(best, time.perf_counter() - t0)
    return best


def _gemm_rate(size: int = 1024, repeats: int = 20, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a square matrix product in ``dtype`` (the compute roofline of a model run in that dtype)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - t0)


@torch.inference_mode()
def _linear_bound(llm: L.LLM, batch: int, repeats: int = 3) -> tuple[float, float]:
    """Seconds and GFLOP/s of one decode step's matrix products alone: every ``nn.Linear`` of the model
    (the LM head included) once, in module order, on ``[batch, in]`` inputs, as decoding uses each weight
    once per step (so the weights come from memory, not cache). ``batch`` / seconds bounds decoding's
    tokens/s at this batch size even if everything else (attention, norms, sampling) were free."""
    linears = [m for m in llm.model.modules() if isinstance(m, torch.nn.Linear)]
    inputs = {m.in_features: torch.randn(batch, m.in_features, dtype=m.weight.dtype) for m in linears}
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        for m in linears:
            torch.nn.functional.linear(inputs[m.in_features], m.weight)
        best = min(best, time.perf_counter() - t0)
    flops = sum(2 * batch * m.weight.numel() for m in linears)
    return best, flops / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=L.EMBEDDED_DEFAULT)
    ap.add_argument("--n-prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--approaches", nargs="+", default=list(APPROACHES), choices=APPROACHES)
    ap.add_argument("--child", choices=APPROACHES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(args.child, args)

    print(f"{args.model}, {args.n_prompts} prompts, T = {args.max_new_tokens} (all generated), batch {args.batch_size}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}; best of {args.repeats}")
    print(f"load average at the start (1/5/15 min): {os.getloadavg()}")
    rows = {}
    for approach in args.approaches:
        runs = []
        for _ in range(args.repeats):
            cmd = [sys.executable, __file__, "--child", approach, *sys.argv[1:]]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            runs.append(json.loads(out))
        rows[approach] = min(runs, key=lambda r: r["seconds"]) | {"peak_rss_gib": max(r["peak_rss_gib"] for r in runs)}
    gen_alone = _generation_only(args)
    print(f"\n{'approach':<36} {'seconds':>8} {'tok/s':>7} {'peak RSS':>9}   vs fused (time, memory)")
    fused = rows.get("package fused")
    for name, r in rows.items():
        ratio = f"{r['seconds'] / fused['seconds']:5.2f}x, {r['peak_rss_gib'] / fused['peak_rss_gib']:5.2f}x" if fused else ""
        print(f"{name:<36} {r['seconds']:8.1f} {r['tokens'] / r['seconds']:7.0f} {r['peak_rss_gib']:7.2f} GiB   {ratio}")
    print(f"{'generation alone (package)':<36} {gen_alone:8.1f}")
    if fused:
        print(f"fused whole job / generation alone: {fused['seconds'] / gen_alone:.2f}x (target <= 1.1)")
    rate = _gemm_rate()
    params = next(iter(rows.values()))["params"]
    roofline = rate / (2 * params)
    decode = next(iter(rows.values()))["tokens"] / gen_alone
    print(f"fp32 GEMM rate {rate / 1e9:.0f} GFLOP/s; roofline {roofline:.0f} tok/s for {params / 1e6:.0f} M parameters; "
          f"batched decoding {decode:.0f} tok/s = {100 * decode / roofline:.0f} % of it")
    llm = L.load_llm(args.model)
    step, gflops = _linear_bound(llm, args.batch_size)
    bound = args.batch_size / step
    print(f"the model's own matrix products at batch {args.batch_size} (each weight once per step, as decoding uses it): "
          f"{step * 1e3:.0f} ms/step = {gflops:.0f} GFLOP/s, so at most {bound:.0f} tok/s even with free attention, norms "
          f"and sampling; batched decoding reaches {100 * decode / bound:.0f} % of that bound")
    print(f"load average at the end (1/5/15 min): {os.getloadavg()} -- other processes on the cores skew all numbers")


if __name__ == "__main__":
    main()
