"""benchmarks/gpu_check.py --tiny: the GPU check's code path on CPU with toy Qwen3 / DINOv2 configs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers.core.paths import PROJECT_ROOT

pytestmark = pytest.mark.functional

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_check.py"
LLM_COLUMNS = [
    "model",
    "params",
    "weights (bf16)",
    "load s",
    "gen batch",
    "gen tok/s",
    "rep batch",
    "rep tok/s",
    "peak GB",
    "T = 8, 120 prompts",
]
ENC_COLUMNS = ["model", "params", "enc batch", "images/s", "peak GB", "40 images"]


def _tables(text: str) -> list[list[list[str]]]:
    """Markdown tables in ``text``: rows of cells, header first, the |---| line dropped."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-"):
                current.append([c.strip() for c in line.strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def _number(cell: str) -> float:
    """The number in a cell like '0.36 M', '0.71 MB', '12.3', '0.42 s', '1.5 min'."""
    m = re.fullmatch(r"([0-9.]+(?:e[+-]?[0-9]+)?)(?: (M|B|MB|GB|s|min))?", cell)
    assert m, cell
    return float(m.group(1))


def test_gpu_check_tiny_prints_positive_measurements():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny"], capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    llm_table, enc_table = _tables(proc.stdout)
    assert llm_table[0] == LLM_COLUMNS
    assert [row[0] for row in llm_table[1:]] == ["tiny-qwen3-a", "tiny-qwen3-b"]
    for row in llm_table[1:]:
        values = [_number(c) for c in row[1:]]
        assert all(v > 0 for v in values), row
        assert int(row[4]) == 16 and int(row[6]) == 16  # "auto" on CPU: suggest_batch_size's cpu_default
    # the larger config has more parameters
    assert _number(llm_table[2][1]) > _number(llm_table[1][1])
    assert enc_table[0] == ENC_COLUMNS and enc_table[1][0] == "tiny-dinov2 (float32)"
    assert all(_number(c) > 0 for c in enc_table[1][1:]), enc_table[1]
    assert "[tiny-qwen3-a] 6 prompts, " in proc.stdout


def test_gpu_check_refuses_without_cuda_unless_tiny():
    # the GPU hidden from the child, so that the refusal is checked on a GPU machine too
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--models", "Qwen3-0.6B"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
        env=env,
    )
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr


def test_full_size_configs_have_the_published_sizes():
    sys.path.insert(0, str(SCRIPT.parent))
    import gpu_check
    from transformers import AutoModelForCausalLM, Qwen3Config

    # parameter counts from the configs alone (meta device: no memory), against the model cards: 0.6B / 8.2B
    counts = {}
    for name, values in gpu_check.QWEN3.items():
        with __import__("torch").device("meta"):
            model = AutoModelForCausalLM.from_config(Qwen3Config(**values))
        counts[name] = sum(p.numel() for p in model.parameters())
    assert 0.59e9 < counts["Qwen3-0.6B"] < 0.61e9  # 596 M with tied embeddings
    assert 8.1e9 < counts["Qwen3-8B"] < 8.3e9  # 8.19 B
