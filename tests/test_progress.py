"""Headless progress bars (helpers/core/progress.py): sparse plain text, the finished line written once."""

from __future__ import annotations

import re
import time

import pytest
from tqdm import tqdm

from helpers.core import progress as P


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.setenv("PERCEIVE_HEADLESS", "1")
    monkeypatch.setattr(P, "HEADLESS_INTERVAL_S", 0.01)  # every update is due: the last one writes 100 % itself


def _lines(text: str) -> list[str]:
    """What a reader of an executed notebook sees: every carriage-return write on its own line."""
    return [s for s in re.split(r"[\r\n]", text) if s.strip()]


def _run_bar(make, n: int = 3) -> None:
    bar = make(total=n, desc="work")
    for _ in range(n):
        time.sleep(0.03)
        bar.update(1)
    bar.close()


def test_plain_tqdm_writes_the_finished_line_twice_in_this_scenario(capsys):
    """The scenario below is the one that duplicated the line (so the next test can fail)."""
    import sys

    _run_bar(lambda **kw: tqdm(file=sys.stdout, mininterval=0.01, ascii=True, **kw))
    assert sum("100%" in s for s in _lines(capsys.readouterr().out)) == 2


def test_headless_bar_writes_the_finished_line_once(headless, capsys):
    _run_bar(P.progress)
    lines = _lines(capsys.readouterr().out)
    assert sum("100%" in s for s in lines) == 1, lines
    assert lines[-1].startswith("work: 100%") and "3/3" in lines[-1]
    assert any("33%" in s for s in lines) and any("67%" in s for s in lines)  # the sparse updates are still there


def test_headless_bar_finished_by_close_alone_and_by_iteration(headless, capsys, monkeypatch):
    monkeypatch.setattr(P, "HEADLESS_INTERVAL_S", 100.0)  # no refresh is due: only close() writes the end
    bar = P.progress(total=4, desc="quick")
    bar.update(4)
    bar.close()
    for _ in P.progress(range(5), desc="loop"):
        pass
    out = capsys.readouterr().out
    lines = _lines(out)
    assert [s.split(":")[0] for s in lines if "100%" in s] == ["quick", "loop"]
    assert out.endswith("\n") and out.count("\n") == 2  # each bar ends its line once


def test_headless_bar_that_never_finishes_shows_no_finished_line(headless, capsys):
    bar = P.progress(total=4, desc="cut")
    bar.update(2)
    bar.close()
    lines = _lines(capsys.readouterr().out)
    assert lines and not any("100%" in s for s in lines) and "2/4" in lines[-1]


def test_headless_bar_with_nothing_to_do_writes_nothing(headless, capsys):
    with P.progress(total=0, desc="generate") as bar:
        bar.update(0)
    assert capsys.readouterr().out == ""
