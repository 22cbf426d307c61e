"""Generation + generative representations: this package against the ways peers do it, in one run.

Four approaches over the same prompts, T and batch size, each in its own process (so that its
peak resident memory is its own), run in ``--repeats`` rounds (each approach once per round, the
order rotated): the best wall time of each, and its time against fused paired within rounds (the
machine is a shared VM whose speed drifts by tens of percent over minutes: the steal column shows
the hypervisor's share). Generation alone (the same decoding without representations) runs in the
rounds too, as the reference of the fused target.

- ``package two-pass``: :func:`helpers.lm.generate`, then the streaming teacher-forced pass
  :func:`helpers.lm.represent` (what notebooks 02 and 03 do today);
- ``package fused``: :func:`helpers.lm.generate_and_represent` (states reduced while decoding);
- ``HF generate + forward``: ``model.generate``, then one forward pass with
  ``output_hidden_states=True`` over prompt + generation (the follow-up study's way);
- ``HF generate(output_hidden_states)``: the per-step hidden-state tuples of ``generate``, reduced.

Every approach generates all T tokens (EOS disabled), so the work is the same. Also printed: the
measured fp32 GEMM rate, each approach's memory above the loaded model (the job's own: peak RSS
counts the ≈ 1 GiB model and runtime every approach shares), the compute roofline for the model
(2 FLOP per parameter per token) and the fraction of it that batched decoding reaches, the rate of
the model's own matrix products at the benchmark's batch size (a tighter bound: decoding streams
each weight once per step) and the load average (the machines are shared).

    .venv/bin/python benchmarks/bench_fused.py [--n-prompts 64] [--max-new-tokens 128] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PERCEIVE_HEADLESS", "1")

import torch

from helpers import lm as L

APPROACHES = ("package two-pass", "package fused", "HF generate + forward", "HF generate(output_hidden_states)")
GENERATION = "generation alone (package)"  # the reference of the fused target: the same decoding, no representations
CAPTIONS = [
    "a red fire truck",
    "a cat sleeping on a sofa",
    "a lighthouse at sunset",
    "a bowl of ramen with chopsticks",
    "two children playing soccer in a park",
    "a thunderstorm over the ocean",
    "a neon sign in the rain",
    "a woman playing the violin on stage",
    "a train crossing a stone bridge",
    "a field of sunflowers",
    "a dog barking at a passing car",
    "church bells ringing in a valley",
    "a kettle whistling on a stove",
    "waves crashing against rocks",
    "a crowded farmers market",
    "a parrot sitting on a branch",
]


def _prompts(llm: L.LLM, n: int) -> list[str]:
    cues = (
        "Imagine what it would look like to see {}.",
        "Imagine what it would sound like to hear {}.",
        "Imagine: {}.",
    )
    texts = [c.format(x) for x in CAPTIONS for c in cues]
    return [L.format_prompt(llm, t) for t in (texts * (n // len(texts) + 1))[:n]]


def _package(llm: L.LLM, prompts: list[str], T: int, bs: int, approach: str) -> int:
    """Generated tokens of one of this package's approaches: fused, two passes, or generation alone."""
    if approach == "package fused":
        out = L.generate_and_represent(llm, prompts, L.Decoding(max_new_tokens=T), batch_size=bs, show_progress=False)
        return sum(len(o["gen_ids"]) for o in out)
    gens = L.generate(llm, prompts, T, batch_size=bs, show_progress=False)
    if approach == "package two-pass":
        L.represent(
            llm, [g["prompt_ids"] for g in gens], [g["gen_ids"] for g in gens], batch_size=16, show_progress=False
        )
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


def _steal_jiffies() -> int:
    """CPU time the hypervisor gave to other machines (``steal`` in /proc/stat; 0 where unknown)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) if len(fields) > 8 else 0
    except OSError:
        return 0


def _child(approach: str, args: argparse.Namespace) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    llm = dataclasses.replace(
        L.load_llm(args.model), eos_token_ids=()
    )  # all T tokens, as the HF peers (min_new_tokens)
    prompts = _prompts(llm, args.n_prompts)
    L.generate(llm, prompts[:2], 2, batch_size=2, show_progress=False)  # warm-up
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB: the model and the runtime
    steal0, t0 = _steal_jiffies(), time.perf_counter()
    if approach.startswith("HF"):
        n = _hf(llm, prompts, args.max_new_tokens, args.batch_size, in_generate="output_hidden_states" in approach)
    else:  # this package's approaches and generation alone
        n = _package(llm, prompts, args.max_new_tokens, args.batch_size, approach)
    dt = time.perf_counter() - t0
    steal = (_steal_jiffies() - steal0) / os.sysconf("SC_CLK_TCK") / ((os.cpu_count() or 1) * dt)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB
    params = sum(p.numel() for p in llm.model.parameters())
    print(
        json.dumps(
            {"seconds": dt, "tokens": n, "peak_rss_gib": rss, "job_gib": rss - loaded, "params": params, "steal": steal}
        )
    )


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


def _summary(rs: list[dict]) -> dict:
    """One approach over its rounds: the best run, and the largest memory and steal of any round."""
    return min(rs, key=lambda r: r["seconds"]) | {
        key: max(r[key] for r in rs) for key in ("peak_rss_gib", "job_gib", "steal")
    }


def _paired(rs: list[dict], ref: list[dict]) -> float:
    """Median over rounds of a run's time over the reference's time in the same round."""
    return statistics.median(r["seconds"] / f["seconds"] for r, f in zip(rs, ref))


def _report(runs: dict[str, list[dict]]) -> None:
    """Best time and largest memory per approach, and each approach's time against fused paired by round
    (the two ran minutes apart, so a slow spell of the shared machine shows in both): median over rounds."""
    summary = {name: _summary(rs) for name, rs in runs.items()}
    fused = summary.get("package fused")
    print(
        f"\n{'approach':<36} {'seconds':>8} {'tok/s':>7} {'peak RSS':>9} {'job':>9} {'steal':>6}   "
        "vs fused: time (best, median paired), peak RSS, job"
    )
    for name, r in summary.items():
        line = (
            f"{name:<36} {r['seconds']:8.1f} {r['tokens'] / r['seconds']:7.0f} {r['peak_rss_gib']:5.2f} GiB "
            f"{r['job_gib']:5.2f} GiB {100 * r['steal']:4.0f} %"
        )
        if fused:
            line += (
                f"   {r['seconds'] / fused['seconds']:5.2f}x, {_paired(runs[name], runs['package fused']):5.2f}x, "
                f"{r['peak_rss_gib'] / fused['peak_rss_gib']:5.2f}x, {r['job_gib'] / max(fused['job_gib'], 1e-9):5.2f}x"
            )
        print(line)
    if fused:
        best = fused["seconds"] / summary[GENERATION]["seconds"]
        paired = _paired(runs["package fused"], runs[GENERATION])
        print(f"fused whole job / generation alone: {best:.2f}x best, {paired:.2f}x median paired (target <= 1.1)")
    print(
        "(job: peak RSS above the loaded model and runtime, measured after the warm-up; steal: the largest share of "
        "the cores the hypervisor gave to other machines during a run. The targets vs fused: HF "
        "generate(output_hidden_states) >= 1.3x, HF generate + forward >= 2x, their memory >= 2.5x; fused / "
        "generation alone <= 1.1)"
    )


def _report_machine(args: argparse.Namespace, runs: dict[str, list[dict]]) -> None:
    """The GEMM rate and roofline now, and the bound of the model's own products at this batch size."""
    best = _summary(runs[GENERATION])
    rate = _gemm_rate()
    roofline = rate / (2 * best["params"])
    decode = best["tokens"] / best["seconds"]
    print(
        f"fp32 GEMM rate {rate / 1e9:.0f} GFLOP/s; roofline {roofline:.0f} tok/s for {best['params'] / 1e6:.0f} M parameters; "
        f"batched decoding {decode:.0f} tok/s = {100 * decode / roofline:.0f} % of it"
    )
    llm = L.load_llm(args.model)
    step, gflops = _linear_bound(llm, args.batch_size)
    bound = args.batch_size / step
    print(
        f"the model's own matrix products at batch {args.batch_size} (each weight once per step, as decoding uses it): "
        f"{step * 1e3:.0f} ms/step = {gflops:.0f} GFLOP/s, so at most {bound:.0f} tok/s even with free attention, norms "
        f"and sampling; batched decoding reaches {100 * decode / bound:.0f} % of that bound"
    )
    print(f"load average at the end (1/5/15 min): {os.getloadavg()} -- other processes on the cores skew all numbers")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=L.EMBEDDED_DEFAULT)
    ap.add_argument("--n-prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--approaches", nargs="+", default=list(APPROACHES), choices=APPROACHES)
    ap.add_argument("--child", choices=(*APPROACHES, GENERATION), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(args.child, args)

    print(
        f"{args.model}, {args.n_prompts} prompts, T = {args.max_new_tokens} (all generated), batch {args.batch_size}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}; best of {args.repeats} rounds"
    )
    print(f"load average at the start (1/5/15 min): {os.getloadavg()}")
    names = [*args.approaches, GENERATION]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(args.repeats):  # rounds: every approach once per round, the order rotated, so drift hits all alike
        for name in names[r % len(names) :] + names[: r % len(names)]:
            cmd = [sys.executable, __file__, "--child", name, *sys.argv[1:]]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            runs[name].append(json.loads(out))
    _report(runs)
    _report_machine(args, runs)


if __name__ == "__main__":
    main()
