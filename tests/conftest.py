"""Shared fixtures: offline mode, temporary cache/outputs, the shared sample data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing may reach a model hub from the tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """A fresh cache root for one test (models converted once are still reused from the real cache)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("PERCEIVE_CACHE", str(root))
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip with a reason if it is absent."""
    from helpers.core.paths import shared_data_root

    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"shared sample data not found at {root} (set PERCEIVE_SHARED)")
    return root


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """Tiny random-weight models saved as HF folders: ``qwen3`` (chat template) and ``llama`` (none)."""
    from tiny_models import save_tiny_llm

    return {
        kind: save_tiny_llm(tmp_path_factory.mktemp(kind), kind, chat)
        for kind, chat in [("qwen3", True), ("llama", False)]
    }


@pytest.fixture(scope="session")
def llms(model_dirs):
    """The tiny models loaded with :func:`helpers.lm.load_llm` (float32, CPU)."""
    from helpers import lm as L

    return {k: L.load_llm(str(d)) for k, d in model_dirs.items()}
