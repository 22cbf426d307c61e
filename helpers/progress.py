"""Progress bars that are live widgets in JupyterLab and plain, sparse text under papermill/CI.

The runner sets ``PERCEIVE_HEADLESS=1`` for the kernels it starts (CI sets ``CI``);
then bars are ASCII text, refreshed at most every ``HEADLESS_INTERVAL_S`` seconds, so
executed notebooks and logs hold a handful of readable lines instead of thousands of
carriage-return updates or an unrendered widget.
"""

from __future__ import annotations

import os
import sys
from typing import Any

HEADLESS_INTERVAL_S = 20.0


def is_headless() -> bool:
    """True when running under the papermill runner, in CI, or with ``PERCEIVE_HEADLESS`` set."""
    return bool(os.environ.get("PERCEIVE_HEADLESS") or os.environ.get("CI"))


def progress(iterable: Any = None, **kwargs: Any):
    """A tqdm bar suited to where the code runs (see module docstring)."""
    if is_headless():
        from tqdm import tqdm

        kwargs.setdefault("mininterval", HEADLESS_INTERVAL_S)
        kwargs.setdefault("maxinterval", HEADLESS_INTERVAL_S * 3)
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("file", sys.stdout)
        kwargs.setdefault("dynamic_ncols", False)
        kwargs.setdefault("ncols", 100)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
