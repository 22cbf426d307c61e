"""The paper-profile LLM path on tiny random-weight models: Qwen3 thinking switch, device_map="auto",
bfloat16, batch sizes from free memory, the registry (Qwen3 sizes, Gemma) and GGUF chunk assembly."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_qwen3_thinking

from helpers import lm as L
from helpers.lm import gguf

USER = "imagine a red apple"


@pytest.fixture(scope="module")
def thinking_dir(tmp_path_factory):
    return save_tiny_qwen3_thinking(tmp_path_factory.mktemp("qwen3think"))


def test_thinking_switch_changes_the_exact_prompt_like_qwen3(thinking_dir):
    off = L.load_llm(str(thinking_dir), enable_thinking=False)
    on = L.load_llm(str(thinking_dir), enable_thinking=True)
    p_off, p_on = L.format_prompt(off, USER), L.format_prompt(on, USER)
    assert p_on == f"<|im_start|>user\n{USER}<|im_end|>\n<|im_start|>assistant\n"
    assert p_off == p_on + "<think>\n\n</think>\n\n"  # Qwen3's template pre-fills an empty think block
    ids_off, ids_on = L.encode_prompts(off, [p_off])[0], L.encode_prompts(on, [p_on])[0]
    assert len(ids_off) == len(ids_on) + 2 and ids_off[: len(ids_on)] == ids_on
    # the full path runs in both modes and the extra tokens change the representation
    reps = []
    for m, p in ((off, p_off), (on, p_on)):
        g = L.generate(m, [p], max_new_tokens=4)[0]
        assert g["prompt"] == p
        reps.append(L.represent(m, [g["prompt_ids"]], [g["gen_ids"] or [5]], show_progress=False)[0]["prompt_last"])
    assert not np.allclose(reps[0], reps[1])


def test_templates_without_thinking_get_no_thinking_kwarg(llms):
    assert "enable_thinking" not in llms["qwen3"].chat_template_kwargs
    # the tiny template (no thinking switch) renders the message exactly as written by hand
    assert L.format_prompt(llms["qwen3"], "hello") == "<|user|> hello <|assistant|>"


def test_device_auto_loads_and_matches_cpu(model_dirs, llms):
    auto = L.load_llm(str(model_dirs["qwen3"]), device="auto")
    assert auto.fingerprint["dtype"] == ("bfloat16" if torch.cuda.is_available() else "float32")
    p = L.format_prompt(auto, "imagine a red apple")
    g_auto = L.generate(auto, [p], max_new_tokens=5)[0]
    g_cpu = L.generate(llms["qwen3"], [p], max_new_tokens=5)[0]
    if not torch.cuda.is_available():  # greedy tokens can flip under bf16 rounding on a GPU
        assert g_auto["gen_ids"] == g_cpu["gen_ids"]
    g_auto = g_cpu  # compare the representation of the same tokens
    r_auto = L.represent(auto, [g_auto["prompt_ids"]], [g_auto["gen_ids"]], show_progress=False, prefix_lengths=[2])[0]
    r_cpu = L.represent(
        llms["qwen3"], [g_cpu["prompt_ids"]], [g_cpu["gen_ids"]], show_progress=False, prefix_lengths=[2]
    )[0]
    # bf16 on an accelerator keeps ~3 significant digits; float32 on CPU agrees to 1e-4
    tol = dict(rtol=5e-2, atol=5e-2) if torch.cuda.is_available() else dict(rtol=1e-4, atol=1e-5)
    for k in ("gen_mean", "prompt_mean", "prefix_means"):
        np.testing.assert_allclose(r_auto[k], r_cpu[k], **tol)


def test_bfloat16_on_cpu_loads_and_represents(model_dirs, llms):
    bf = L.load_llm(str(model_dirs["qwen3"]), "cpu", "bf16")
    assert bf.model.dtype == torch.bfloat16 and bf.fingerprint["dtype"] == "bfloat16"
    assert bf.fingerprint != llms["qwen3"].fingerprint  # different dtype, different cache key
    p = L.encode_prompts(bf, [L.format_prompt(bf, "a cat and a dog")])[0]
    r_bf = L.represent(bf, [p], [[5, 6, 7, 8]], show_progress=False)[0]
    r_32 = L.represent(llms["qwen3"], [p], [[5, 6, 7, 8]], show_progress=False)[0]
    assert r_bf["gen_mean"].dtype == np.float32 and np.isfinite(r_bf["gen_mean"]).all()
    a, b = r_bf["gen_mean"].ravel(), r_32["gen_mean"].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.99  # same model, bf16 rounding only
    assert not np.array_equal(a, b)


def test_bytes_per_sequence_counts_the_kv_cache(llms):
    m = llms["qwen3"]  # 3 layers, 2 kv heads x head_dim 8, float32
    kv = 2 * 3 * 2 * 8 * 4
    assert L.bytes_per_sequence(m, 20) - L.bytes_per_sequence(m, 10) > 10 * kv  # KV + activations grow
    assert L.bytes_per_sequence(m, 10, "generate") - L.bytes_per_sequence(m, 10, "represent") < 10 * kv
    with pytest.raises(ValueError, match="kind"):
        L.bytes_per_sequence(m, 10, "train")  # type: ignore[arg-type]


def test_suggest_batch_size_follows_free_memory(llms):
    m = llms["qwen3"]
    per = L.bytes_per_sequence(m, 100)
    assert L.suggest_batch_size(m, 100, free_bytes=10 * per, safety=1.0) == 10
    assert L.suggest_batch_size(m, 100, free_bytes=10 * per, safety=0.5) == 5
    assert L.suggest_batch_size(m, 400, free_bytes=10 * per, safety=1.0) < 10  # longer sequences, fewer
    assert L.suggest_batch_size(m, 100, free_bytes=0) == 1  # never below one
    assert L.suggest_batch_size(m, 100, free_bytes=10**15, max_batch=64) == 64
    if not torch.cuda.is_available():  # CPU: memory is not the limit
        assert L.suggest_batch_size(m, 100, cpu_default=12) == 12
    with pytest.raises(ValueError):
        L.suggest_batch_size(m, 0, free_bytes=per)


def test_resolve_batch_size_accepts_int_or_auto(llms):
    m = llms["qwen3"]
    assert L.resolve_batch_size(7, m, 50) == 7
    assert L.resolve_batch_size("auto", m, 50) == L.suggest_batch_size(m, 50)
    for bad in ("big", 0, -2):
        with pytest.raises(ValueError, match="positive integer or 'auto'"):
            L.resolve_batch_size(bad, m, 50)


def test_registry_has_qwen3_family_and_gemma_base():
    for size in ("0.6B", "1.7B", "4B", "8B", "14B", "32B"):
        spec = L.MODEL_REGISTRY[f"Qwen/Qwen3-{size}"]
        assert spec.source == "hf" and spec.supports_thinking
    g = L.MODEL_REGISTRY[L.GEMMA_BASE]
    assert g.source == "gguf-chunks" and g.chat_template is False and len(g.chunks) == 4 and len(g.sha256 or "") == 64
    with pytest.raises(ValueError, match="gemma-3-270m"):
        L.load_llm("no-such-model")


def test_qwen3_offline_error_names_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="local cache"):
        L.load_llm("Qwen/Qwen3-0.6B")


def test_missing_chunk_package_names_the_install(monkeypatch):
    spec = L.ModelSpec(
        name="fake",
        source="gguf-chunks",
        description="",
        package="fake-gguf",
        chunks=(("no-such-dist-xyz", "x/part00"),),
    )
    with pytest.raises(FileNotFoundError, match="pip install"):
        gguf.gguf_chunk_paths(spec)


def test_assemble_gguf_concatenates_checks_sha_and_leaves_nothing_on_mismatch(tmp_path, monkeypatch):
    parts = []
    for i, data in enumerate([b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]):
        (tmp_path / f"p{i}").write_bytes(data)
        parts.append(tmp_path / f"p{i}")
    whole = b"".join(p.read_bytes() for p in parts)
    monkeypatch.setattr(gguf, "gguf_chunk_paths", lambda spec: parts)
    good = L.ModelSpec(name="fake", source="gguf-chunks", description="", sha256=hashlib.sha256(whole).hexdigest())
    out = L.assemble_gguf(good, tmp_path / "models")
    assert out.read_bytes() == whole and out.parent == tmp_path / "models" / "gguf"
    assert L.assemble_gguf(good, tmp_path / "models") == out  # reused
    bad = L.ModelSpec(name="bad", source="gguf-chunks", description="", sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        L.assemble_gguf(bad, tmp_path / "m2")
    assert list((tmp_path / "m2" / "gguf").iterdir()) == []


def test_decoding_cache_config():
    d = L.Decoding(max_new_tokens=7)
    assert d.cache_config() == {
        "max_new_tokens": 7,
        "do_sample": False,
        "seed": None,
        "temperature": None,
        "top_p": None,
    }
    assert L.Decoding(do_sample=True, seed=3).cache_config()["seed"] == 3


_LOAD_AT_REVISIONS = """
import json, sys
from helpers import lm
out = {}
for rev in (None, sys.argv[1], "0" * 40):
    try:
        llm = lm.load_llm("Qwen/Qwen3-0.6B", revision=rev)
        out[str(rev)] = {"revision": llm.fingerprint["revision"], "note": lm.revision_note(llm)}
    except Exception as e:
        out[str(rev)] = {"error": type(e).__name__}
print(json.dumps(out))
"""


@pytest.mark.functional
def test_a_hub_model_loads_at_the_pinned_revision_and_records_it(thinking_dir, tmp_path):
    """The paper's models by hub id: the cached snapshot's commit is recorded, a pinned commit loads that
    snapshot, and a commit the cache does not hold is an error (offline), never another snapshot."""
    import json
    import os
    import subprocess
    import sys

    from paper_world import install_in_hub_cache

    from helpers.core.paths import PROJECT_ROOT

    snap = install_in_hub_cache(thinking_dir, "Qwen/Qwen3-0.6B", tmp_path / "hf" / "hub")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["PERCEIVE_CACHE"] = str(tmp_path / "cache")
    run = subprocess.run(
        [sys.executable, "-c", _LOAD_AT_REVISIONS, snap.name],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["None"]["revision"] == snap.name and got[snap.name]["revision"] == snap.name
    assert f"--param llm_revision={snap.name}" in got["None"]["note"]
    assert "error" in got["0" * 40]


def test_a_revision_is_refused_for_a_model_not_from_the_hub(thinking_dir):
    with pytest.raises(ValueError, match="does not come from the hub"):
        L.load_llm(str(thinking_dir), revision="main")
    assert L.revision_note(L.load_llm(str(thinking_dir))).startswith("weights: local folder")
