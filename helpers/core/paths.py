"""Where things live on disk: the project root, the data cache and the run outputs.

Every location can be overridden with an environment variable so that tests and
cluster jobs can point the package elsewhere without touching notebooks.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """Root of the content-addressed cache (``$PERCEIVE_CACHE`` or ``data/cache``)."""
    return Path(os.environ.get("PERCEIVE_CACHE", PROJECT_ROOT / "data" / "cache"))


def raw_data_root() -> Path:
    """Where downloaded/extracted datasets live (``$PERCEIVE_RAW`` or ``data/raw``)."""
    return Path(os.environ.get("PERCEIVE_RAW", PROJECT_ROOT / "data" / "raw"))


def outputs_root() -> Path:
    """Where runs write executed notebooks, figures and tables (``$PERCEIVE_OUTPUTS`` or ``outputs``)."""
    return Path(os.environ.get("PERCEIVE_OUTPUTS", PROJECT_ROOT / "outputs"))


def shared_data_root() -> Path:
    """The read-only sample data beside the checkout (``$PERCEIVE_SHARED`` or ``../shared/data``)."""
    return Path(os.environ.get("PERCEIVE_SHARED", PROJECT_ROOT.parent / "shared" / "data"))
