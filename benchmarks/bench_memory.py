"""Peak memory of the representation pass: streaming reduction vs ``output_hidden_states=True``.

For random-weight Qwen3-style models built in-process (no download), each measurement runs
in its own subprocess and reports the growth of the process's peak RSS (``ru_maxrss``)
during one forward pass over a single sequence of ``T`` tokens, after a short warm-up:

- ``stream``: :func:`helpers.lm.represent` (hooks reduce each layer's ``[T, H]`` output to a
  few means at once; kept: ``(L+1) x rows x H`` floats);
- ``naive``: ``model(..., output_hidden_states=True)`` then the same means from the stacked
  ``(L+1) x T x H`` hidden states (what the reduction avoids).

Two sweeps: tokens at fixed layers/hidden, and layers x hidden at fixed tokens. The streaming
peak should stay flat in ``L`` at fixed ``T`` (it holds one layer's activations at a time,
~ ``T x H``) while the naive peak grows with ``L x T x H``. No assertions; prints a table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_memory.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PERCEIVE_HEADLESS", "1")

MB = 1024 * 1024


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _child(layers: int, hidden: int, tokens: int, method: str) -> dict:
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen3Config

    from helpers import lm as L

    torch.set_num_threads(1)
    cfg = Qwen3Config(
        vocab_size=512,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        intermediate_size=2 * hidden,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"<pad>": 0, "<unk>": 1}, unk_token="<unk>")),
        pad_token="<pad>",
        unk_token="<unk>",
    )
    llm = L.LLM(model=model, tokenizer=tok, name="random", use_chat_template=False, fingerprint={})
    g = torch.Generator().manual_seed(1)
    n_prompt = 16
    ids = torch.randint(2, 512, (tokens,), generator=g).tolist()
    p, q = ids[:n_prompt], ids[n_prompt:]

    def stream(p, q):
        return L.represent(llm, [p], [q], batch_size=1, show_progress=False)[0]["gen_mean"]

    @torch.inference_mode()
    def naive(p, q):
        x = torch.as_tensor([p + q])
        hs = model.model(input_ids=x, output_hidden_states=True, use_cache=False).hidden_states
        stacked = torch.stack(hs)[:, 0]  # [L+1, T, H]: everything a naive pipeline keeps
        return stacked[:, len(p) :].mean(1).numpy()

    fn = stream if method == "stream" else naive
    fn(p[:8], q[:8])  # warm-up: kernels, allocator pools
    base = _peak_rss()
    t0 = time.perf_counter()
    out = fn(p, q)
    dt = time.perf_counter() - t0
    kept = (layers + 1) * 3 * hidden * 4 if method == "stream" else (layers + 1) * tokens * hidden * 4
    return {
        "L": layers,
        "H": hidden,
        "T": tokens,
        "method": method,
        "peak_growth_mb": (_peak_rss() - base) / MB,
        "kept_mb": kept / MB,
        "seconds": dt,
        "out_shape": list(out.shape),
    }


def measure(layers: int, hidden: int, tokens: int, method: str) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps([layers, hidden, tokens, method])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="fewer, smaller configurations")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(*json.loads(args.child))))
        return
    if args.quick:
        sweeps = [
            ("tokens", [(8, 256, t) for t in (128, 512, 1024)]),
            ("layers", [(n_layers, 256, 512) for n_layers in (4, 8, 16)]),
        ]
    else:
        sweeps = [
            ("tokens (L=16, H=512)", [(16, 512, t) for t in (128, 512, 1024, 2048)]),
            (
                "layers x hidden (T=1024)",
                [(n_layers, h, 1024) for n_layers, h in ((4, 512), (8, 512), (16, 512), (32, 512), (16, 1024))],
            ),
        ]
    print(f"torch threads 1, batch 1; peak = growth of peak RSS during one pass; load avg {os.getloadavg()}")
    print(
        f"{'sweep':<26} {'L':>3} {'H':>5} {'T':>5} | {'stream peak MB':>14} {'kept MB':>8} | {'naive peak MB':>13} {'kept MB':>8} | L*T*H*4 MB"
    )
    for name, configs in sweeps:
        for n_layers, h, t in configs:
            s, n = measure(n_layers, h, t, "stream"), measure(n_layers, h, t, "naive")
            print(
                f"{name:<26} {n_layers:>3} {h:>5} {t:>5} | {s['peak_growth_mb']:>14.1f} {s['kept_mb']:>8.2f} | "
                f"{n['peak_growth_mb']:>13.1f} {n['kept_mb']:>8.1f} | {(n_layers + 1) * t * h * 4 / MB:>9.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
