"""Progress bars that are live widgets in JupyterLab and plain, sparse text under papermill/CI.

The runner sets ``PERCEIVE_HEADLESS=1`` for the kernels it starts (CI sets ``CI``);
then bars are ASCII text, refreshed at most every ``HEADLESS_INTERVAL_S`` seconds, so
executed notebooks and logs hold a handful of readable lines instead of thousands of
carriage-return updates or an unrendered widget. The finished (100 %) line is written
once: tqdm writes it when the last update comes after a refresh interval and again when the
bar closes, which under papermill (every write its own output line) showed it twice. A bar
with nothing to do (``total=0``: everything came from the cache) writes nothing.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm import tqdm as _plain_tqdm

HEADLESS_INTERVAL_S = 20.0


def is_headless() -> bool:
    """True when running under the papermill runner, in CI, or with ``PERCEIVE_HEADLESS`` set."""
    return bool(os.environ.get("PERCEIVE_HEADLESS") or os.environ.get("CI"))


class _SparseBar(_plain_tqdm):
    """A plain-text tqdm bar that writes its finished state (n == total) at most once."""

    _finished_shown = False

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        finished = msg is None and self.total is not None and self.n >= self.total
        if finished and self._finished_shown:
            return True  # already on screen: close() only ends the line
        self._finished_shown = self._finished_shown or finished
        return super().display(msg, pos)


def progress(iterable: Any = None, **kwargs: Any):
    """A tqdm bar suited to where the code runs (see module docstring)."""
    if is_headless():
        kwargs.setdefault("mininterval", HEADLESS_INTERVAL_S)
        kwargs.setdefault("maxinterval", HEADLESS_INTERVAL_S * 3)
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("file", sys.stdout)
        kwargs.setdefault("dynamic_ncols", False)
        kwargs.setdefault("ncols", 100)
        if kwargs.get("total") == 0:  # nothing to do (all cached): the caller's own line says so, no "0item" bar
            kwargs["disable"] = True
        return _SparseBar(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
