"""Measure on one GPU what the paper profile does there, with random weights and no hub.

Builds full-size random-weight Qwen3-0.6B and Qwen3-8B (``transformers.Qwen3Config`` with the
published config.json values) and DINOv2-base (``Dinov2Config``) in-process, saves each as a
model folder and loads it the way the notebooks do (``helpers.lm.load_llm`` with
``llm_device="auto"``, bfloat16; ``helpers.encoders.paper.Dinov2Encoder``), then measures with
the project's own functions:

- generation: ``helpers.lm.generate`` (batched greedy, KV cache) at the ``auto`` batch size
  (``helpers.lm.resolve_batch_size`` → ``suggest_batch_size``), tokens/s over generated tokens;
- the representation pass: ``helpers.lm.represent`` (one teacher-forced pass, streaming per-layer
  means, the profile's prefix lengths) at its ``auto`` batch size, tokens/s over prompt + generated tokens;
- peak GPU memory (``torch.cuda.max_memory_allocated``) per model over load + both passes;
- DINOv2-base images/s through the encoder's own preprocessing and forward pass.

It prints a Markdown table like the README's GPU estimate table, with the measured rates
projected onto the paper profile (``--items`` x ``--cues`` prompts at T = ``--tokens``).
Random weights rarely emit EOS, so every prompt runs to T tokens: the worst case of real runs.

    python benchmarks/gpu_check.py                      # on a CUDA machine (minutes: the 8B folder is 16 GB)
    python benchmarks/gpu_check.py --models Qwen3-0.6B  # one model
    python benchmarks/gpu_check.py --tiny               # tiny configs on CPU (the test; seconds)

``--workdir`` is where the model folders are written (default: a temporary folder, removed after;
the 8B folder needs 16 GB of disk). Expected wall time on one H100/H200, not yet measured: a few
minutes, mostly writing and reading the 8B folder. ``load s`` is ``load_llm`` from that folder
(the local folder's SHA-256, which ``load_llm`` computes for local models, is done beforehand).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("PERCEIVE_HEADLESS", "1")  # plain-text progress, no transformers loading bars

from helpers import lm  # noqa: E402

#: Published config.json values (huggingface.co/Qwen/Qwen3-0.6B, /Qwen3-8B).
_QWEN3_COMMON = dict(
    vocab_size=151936,
    head_dim=128,
    num_key_value_heads=8,
    max_position_embeddings=40960,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    hidden_act="silu",
    attention_bias=False,
    bos_token_id=151643,
    eos_token_id=151645,
)
QWEN3 = {
    "Qwen3-0.6B": dict(
        _QWEN3_COMMON,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        tie_word_embeddings=True,
    ),
    "Qwen3-8B": dict(
        _QWEN3_COMMON,
        hidden_size=4096,
        intermediate_size=12288,
        num_hidden_layers=36,
        num_attention_heads=32,
        tie_word_embeddings=False,
    ),
}
#: facebook/dinov2-base config.json values.
DINOV2_BASE = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    mlp_ratio=4,
    patch_size=14,
    image_size=518,
    layerscale_value=1.0,
    layer_norm_eps=1e-6,
    qkv_bias=True,
    hidden_act="gelu",
    use_swiglu_ffn=False,
)
#: --tiny: the same architectures at toy sizes, for a CPU test.
TINY_QWEN3 = {
    "tiny-qwen3-a": dict(
        vocab_size=600,
        head_dim=16,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        tie_word_embeddings=True,
    ),
    "tiny-qwen3-b": dict(
        vocab_size=600,
        head_dim=16,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        hidden_size=96,
        intermediate_size=192,
        num_hidden_layers=3,
        num_attention_heads=6,
        tie_word_embeddings=False,
    ),
}
TINY_DINOV2 = dict(DINOV2_BASE, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)

COLUMNS = [
    "model",
    "params",
    "weights (bf16)",
    "load s",
    "gen batch",
    "gen tok/s",
    "rep batch",
    "rep tok/s",
    "peak GB",
    "projected",
]


def _tokenizer(vocab_size: int, bos: int, eos: int):
    """A word-level tokenizer over the model's whole vocabulary: token ``w<i>`` is id ``i``."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(WordLevel({f"w{i}": i for i in range(vocab_size)}, unk_token="w0"))
    tk.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="w0", pad_token=f"w{bos}", eos_token=f"w{eos}")


def save_random_qwen3(folder: Path, values: dict, device: str) -> Path:
    """A random-weight Qwen3 of config ``values`` in bfloat16, saved with its tokenizer as a model folder."""
    from transformers import AutoModelForCausalLM, Qwen3Config

    cfg = Qwen3Config(**values, pad_token_id=values["bos_token_id"])
    torch.manual_seed(0)
    with torch.device(device):  # random init where it is fast (the GPU); save_pretrained copies to disk
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    del model
    _tokenizer(values["vocab_size"], values["bos_token_id"], values["eos_token_id"]).save_pretrained(folder)
    _empty_cache()
    return folder


def save_random_dinov2(folder: Path, values: dict) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(**values)).save_pretrained(folder)
    return folder


def _empty_cache() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak() -> None:
    for d in range(torch.cuda.device_count()):
        torch.cuda.reset_peak_memory_stats(d)


def _peak_gb() -> float:
    """Peak GPU memory allocated since the last reset, summed over the GPUs (``device_map="auto"`` may
    spread a model); on CPU the process's peak resident memory."""
    if torch.cuda.is_available():
        return sum(torch.cuda.max_memory_allocated(d) for d in range(torch.cuda.device_count())) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def _prompts(rng: np.random.Generator, n: int, length: int, vocab_size: int) -> list[str]:
    """``n`` prompt strings of ``length`` random word tokens (the tokenizer adds none)."""
    ids = rng.integers(3, min(vocab_size, 150000), size=(n, length))
    return [" ".join(f"w{i}" for i in row) for row in ids]


def measure_llm(name: str, folder: Path, args: argparse.Namespace) -> dict:
    """Load ``folder`` with ``load_llm`` and time generation and the representation pass at the auto batch sizes."""
    from helpers.core.cache import file_fingerprint

    for f in folder.iterdir():  # load_llm hashes a local folder (memoised): done here, outside the timed load,
        if f.is_file():  # since the paper profile loads from the hub cache and hashes nothing
            file_fingerprint(f)
    _empty_cache()
    _reset_peak()
    t0 = time.perf_counter()
    model = lm.load_llm(str(folder), device=args.device, dtype=args.dtype)
    _sync()
    load_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.model.parameters())
    vocab = int(model.model.config.vocab_size)
    rng = np.random.default_rng(0)
    longest = args.prompt_len + args.tokens
    gen_batch = lm.resolve_batch_size(args.gen_batch_size, model, longest, "generate")
    n = args.prompts or gen_batch  # default: one full batch at the auto size
    prompts = _prompts(rng, n, args.prompt_len, vocab)
    lm.generate(model, prompts[: min(2, n)], max_new_tokens=2, batch_size=gen_batch)  # warm-up (kernels, allocator)
    _sync()
    t0 = time.perf_counter()
    gens = lm.generate(model, prompts, max_new_tokens=args.tokens, batch_size=gen_batch)
    _sync()
    gen_s = time.perf_counter() - t0
    n_gen = sum(len(g["gen_ids"]) for g in gens)
    prompt_ids = [list(g["prompt_ids"]) for g in gens]
    gen_ids = [list(g["gen_ids"]) or [int(model.tokenizer.pad_token_id)] for g in gens]
    rep_longest = max(len(p) + len(g) for p, g in zip(prompt_ids, gen_ids))
    rep_batch = lm.resolve_batch_size(args.rep_batch_size, model, rep_longest, "represent")
    lm.represent(model, prompt_ids[:2], gen_ids[:2], batch_size=rep_batch, show_progress=False)  # warm-up
    _sync()
    t0 = time.perf_counter()
    reps = lm.represent(
        model, prompt_ids, gen_ids, batch_size=rep_batch, prefix_lengths=args.prefix_lengths, show_progress=False
    )
    _sync()
    rep_s = time.perf_counter() - t0
    assert len(reps) == n and np.isfinite(reps[0]["gen_mean"]).all()
    n_rep_tokens = sum(len(p) + len(g) for p, g in zip(prompt_ids, gen_ids))
    peak = _peak_gb()
    lm.free_llm(model)
    del model
    _empty_cache()
    # projection onto the paper profile: full batches at the measured time per batch, then the representation pass
    n_total = args.items * args.cues
    per_batch = gen_s / math.ceil(n / gen_batch)
    rep_tok_s = n_rep_tokens / rep_s
    projected = math.ceil(n_total / gen_batch) * per_batch + n_total * (args.prompt_len + args.tokens) / rep_tok_s
    return {
        "model": name,
        "params": n_params,
        "weights (bf16)": 2 * n_params / 1e9,
        "load s": load_s,
        "gen batch": gen_batch,
        "gen tok/s": n_gen / gen_s,
        "rep batch": rep_batch,
        "rep tok/s": rep_tok_s,
        "peak GB": peak,
        "projected": projected / 60,
        "measured prompts": n,
        "generated tokens": n_gen,
    }


def measure_dinov2(folder: Path, args: argparse.Namespace, workdir: Path) -> dict:
    """Images/s of the dinov2-base encoder (its own preprocessing + forward) on random images."""
    from PIL import Image

    from helpers.encoders.paper import Dinov2Encoder

    images = workdir / "images"
    images.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(args.images):
        p = images / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    _empty_cache()
    _reset_peak()
    enc = Dinov2Encoder(
        checkpoint=folder, pooling="cls", device=device, dtype=args.enc_dtype, batch_size=args.enc_batch
    )
    enc.embed(paths[: min(2, len(paths))])  # warm-up: loads the weights
    _sync()
    t0 = time.perf_counter()
    feats = enc.embed(paths)
    _sync()
    seconds = time.perf_counter() - t0
    assert feats.shape == (len(paths), enc.dim) and np.isfinite(feats).all()
    n_params = sum(p.numel() for p in enc.model.parameters())
    peak = _peak_gb()
    del enc
    _empty_cache()
    return {
        "model": f"{'tiny-dinov2' if args.tiny else 'dinov2-base'} ({args.enc_dtype})",
        "params": n_params,
        "images/s": len(paths) / seconds,
        "enc batch": args.enc_batch,
        "peak GB": peak,
        "projected": args.items / (len(paths) / seconds) / 60,
    }


def _fmt(value, column: str) -> str:
    if isinstance(value, str):
        return value
    if column == "params":
        return f"{value / 1e9:.2f} B" if value >= 1e8 else f"{value / 1e6:.2f} M"
    if column == "weights (bf16)":
        return f"{value:.1f} GB" if value >= 0.1 else f"{value * 1e3:.2f} MB"
    if column in ("gen batch", "rep batch", "enc batch"):
        return str(int(value))
    if column == "projected":  # minutes
        return f"{value:.1f} min" if value >= 1 else f"{value * 60:.3g} s"
    if column == "peak GB":
        return f"{value:.2f}" if value >= 0.01 else f"{value:.4f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def table(rows: list[dict], columns: list[str] = COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r[c], c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tiny", action="store_true", help="tiny configs on CPU (a test of this script)")
    ap.add_argument("--models", nargs="*", default=None, help=f"default: {' '.join(QWEN3)} (--tiny: the tiny ones)")
    ap.add_argument("--no-encoder", action="store_true", help="skip DINOv2-base")
    ap.add_argument("--tokens", type=int, default=None, help="T: tokens generated per prompt (paper: 128; --tiny: 8)")
    ap.add_argument("--prompt-len", type=int, default=None, help="tokens per prompt (a chat-formatted WiT prompt: ~40)")
    ap.add_argument("--prompts", type=int, default=None, help="prompts measured (default: one batch at the auto size)")
    ap.add_argument("--gen-batch-size", default="auto", help="as the paper profile: auto")
    ap.add_argument("--rep-batch-size", default="auto", help="as the paper profile: auto")
    ap.add_argument("--prefix-lengths", type=int, nargs="*", default=[8, 16, 32, 64], help="the paper profile's")
    ap.add_argument("--items", type=int, default=1024, help="items of the projected run (WiT-1024)")
    ap.add_argument("--cues", type=int, default=3)
    ap.add_argument("--images", type=int, default=None, help="images for DINOv2 (default 256; --tiny 8)")
    ap.add_argument("--enc-batch", type=int, default=16, help="the profile's enc_batch_size")
    ap.add_argument("--enc-dtype", default="float32", help="the dinov2-base default (the paper profile sets none)")
    ap.add_argument("--workdir", type=Path, default=None, help="where model folders go (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.tiny:
        args.device, args.dtype = "cpu", "bfloat16"
        args.models = args.models or list(TINY_QWEN3)
        args.tokens = args.tokens or 8
        args.prompt_len = args.prompt_len or 12
        args.prompts = args.prompts or 6
        args.images = args.images or 8
        args.items = min(args.items, 40)
    else:
        if not torch.cuda.is_available():
            ap.error("no CUDA device: this check measures a GPU (use --tiny for the CPU test)")
        args.device, args.dtype = "auto", "bfloat16"  # the paper profile: llm_device auto, llm_dtype null -> bf16
        args.models = args.models or list(QWEN3)
        args.tokens = args.tokens or 128
        args.prompt_len = args.prompt_len or 40
        args.images = args.images or 256
    configs = TINY_QWEN3 if args.tiny else QWEN3
    unknown = [m for m in args.models if m not in configs]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(configs)}")
    args.gen_batch_size = args.gen_batch_size if args.gen_batch_size == "auto" else int(args.gen_batch_size)
    args.rep_batch_size = args.rep_batch_size if args.rep_batch_size == "auto" else int(args.rep_batch_size)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    configs = TINY_QWEN3 if args.tiny else QWEN3
    workdir = Path(tempfile.mkdtemp(prefix="gpu_check_")) if args.workdir is None else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    build_device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not args.tiny else "CPU"
    print(
        f"gpu_check on {where}, torch {torch.__version__}, {args.dtype}; T = {args.tokens}, prompts of "
        f"{args.prompt_len} tokens; projected: {args.items} items x {args.cues} cues",
        flush=True,
    )
    rows, enc_rows = [], []
    try:
        for name in args.models:
            t0 = time.perf_counter()
            folder = save_random_qwen3(workdir / name, configs[name], build_device)
            print(f"[{name}] built and saved in {time.perf_counter() - t0:.1f} s", flush=True)
            rows.append(measure_llm(name, folder, args))
            print(f"[{name}] {rows[-1]['measured prompts']} prompts, {rows[-1]['generated tokens']} tokens", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
        if not args.no_encoder:
            folder = save_random_dinov2(workdir / "dinov2", TINY_DINOV2 if args.tiny else DINOV2_BASE)
            enc_rows.append(measure_dinov2(folder, args, workdir))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(rows).replace("| projected |", f"| T = {args.tokens}, {args.items * args.cues} prompts |", 1))
    if enc_rows:
        print()
        print(
            table(enc_rows, ["model", "params", "enc batch", "images/s", "peak GB", "projected"]).replace(
                "| projected |", f"| {args.items} images |", 1
            )
        )
    print(
        "\nmeasured with random weights (every generation runs to T); peak GB: torch.cuda.max_memory_allocated "
        "(CPU: process peak RSS); projected = measured rates x the paper profile's prompts, model loading not included"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
