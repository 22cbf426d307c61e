"""Throughput of helpers.lm on this machine with the embedded SmolLM2-135M-Instruct (or ``--model``).

Prints single-sequence vs batched generation rates (generated tokens per second), the
batched speed-up, and the cost of the teacher-forced representation pass. No assertions.

    .venv/bin/python benchmarks/bench_llm.py [--max-new-tokens 64] [--n-prompts 32]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PERCEIVE_HEADLESS", "1")  # quiet progress bars

import torch

from helpers import lm as L

OBJECTS = [
    "a red fire truck",
    "a cat sleeping on a sofa",
    "a bowl of fruit on a table",
    "two children playing soccer in a park",
    "a lighthouse at sunset",
    "a bicycle leaning against a wall",
    "a snowy mountain peak",
    "a plate of spaghetti",
    "a busy city street at night",
    "a golden retriever catching a frisbee",
    "an old wooden boat on a lake",
    "a field of sunflowers",
    "a chef cooking in a kitchen",
    "a hot air balloon over green hills",
    "a stack of books on a desk",
    "a thunderstorm over the ocean",
    "a man riding a horse on a beach",
    "a bowl of ramen with chopsticks",
    "a train crossing a stone bridge",
    "a woman playing the violin on stage",
    "a pile of autumn leaves",
    "a parrot sitting on a branch",
    "a kitchen with a red kettle",
    "a crowded farmers market",
    "an airplane taking off at dawn",
    "a child blowing out birthday candles",
    "a sailboat on calm water",
    "a vase of tulips by a window",
    "a skateboarder jumping over stairs",
    "a herd of elephants at a river",
    "a neon sign in the rain",
    "a cup of coffee with latte art",
]


REPEATS = 2  # best of: other processes on a 2-core machine easily halve a single run


def timed_generate(llm: L.LLM, prompts: list[str], max_new_tokens: int, batch_size: int) -> tuple[float, int, list]:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = L.generate(llm, prompts, max_new_tokens, batch_size=batch_size, show_progress=False)
        best = min(best, time.perf_counter() - t0)
    return best, sum(len(o["gen_ids"]) for o in out), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--n-prompts", type=int, default=32)
    ap.add_argument("--n-single", type=int, default=4, help="prompts decoded one at a time for the baseline")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model", default=L.EMBEDDED_DEFAULT, help="registry name, e.g. gemma-3-270m")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    t0 = time.perf_counter()
    llm = L.load_llm(args.model)
    print(
        f"cpu cores: {cores}, torch {torch.__version__}, load_llm: {time.perf_counter() - t0:.1f} s "
        "(first call also converts the GGUF, ~20 s, once)"
    )
    print(f"each timing is the best of {REPEATS} runs")
    print(f"load average at the start (1/5/15 min): {os.getloadavg()}")
    prompts = [L.format_prompt(llm, f"Imagine what it would look like to see {o}.") for o in OBJECTS]
    prompts = (prompts * (args.n_prompts // len(prompts) + 1))[: args.n_prompts]
    T = args.max_new_tokens
    L.generate(llm, prompts[:2], 4, batch_size=2, show_progress=False)  # warm-up

    print(f"\n== generation, greedy, max_new_tokens={T} ==")
    single_rate: dict[int, float] = {}
    for th in args.threads:
        torch.set_num_threads(th)
        dt, n, _ = timed_generate(llm, prompts[: args.n_single], T, 1)
        single_rate[th] = n / dt
        print(f"threads={th} batch=1   prompts={args.n_single:3d} tokens={n:5d} {dt:6.1f} s {n / dt:7.1f} tok/s")
    best_single = max(single_rate.values())
    torch.set_num_threads(cores)
    last_out = None
    for th in sorted(set(args.threads) | {cores}, reverse=True):
        torch.set_num_threads(th)
        for bs in args.batch_sizes:
            if th != cores and bs != 16:
                continue
            dt, n, out = timed_generate(llm, prompts, T, bs)
            last_out = out if th == cores else last_out
            print(
                f"threads={th} batch={bs:<3d} prompts={len(prompts):3d} tokens={n:5d} {dt:6.1f} s "
                f"{n / dt:7.1f} tok/s  speed-up vs best single {n / dt / best_single:4.1f}x"
            )
    torch.set_num_threads(cores)
    assert last_out is not None
    print(f"sample: {last_out[0]['text'][:120]!r}")

    print("\n== teacher-forced representation pass (31 layers incl. embeddings, prefix means 8/16/32/64) ==")
    gen_tokens = sum(len(o["gen_ids"]) for o in last_out)
    prompt_tokens = sum(len(o["prompt_ids"]) for o in last_out)
    for bs in (4, 8, 16):
        dt = float("inf")
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            reps = L.represent(
                llm,
                [o["prompt_ids"] for o in last_out],
                [o["gen_ids"] for o in last_out],
                batch_size=bs,
                prefix_lengths=(8, 16, 32, 64),
                show_progress=False,
            )
            dt = min(dt, time.perf_counter() - t0)
        print(
            f"batch={bs:<3d} items={len(reps)} ({prompt_tokens} prompt + {gen_tokens} generated tokens) "
            f"{dt:5.2f} s  {len(reps) / dt:6.1f} items/s  {1000 * dt / gen_tokens:5.2f} s per 1000 generated tokens"
        )
    print(f"gen_mean shape {reps[0]['gen_mean'].shape}, prefix_means {reps[0]['prefix_means'].shape}")
    print(f"\nload average at the end (1/5/15 min): {os.getloadavg()} -- other processes on the cores skew all numbers")


if __name__ == "__main__":
    main()
