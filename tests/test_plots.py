"""helpers.report.plots: cue colours."""

from __future__ import annotations

from helpers.report.plots import CUE_PALETTE, cue_colors


def test_custom_cues_never_take_a_paper_cue_colour():
    paper = {c.lower() for c in CUE_PALETTE.values()}
    for cues in (["SEE", "HEAR", "NONE", "CUSTOM"], ["CUSTOM"], ["HEAR", "A", "B", "C", "D", "E", "F"]):
        colours = cue_colors(cues)
        custom = [colours[c] for c in cues if c not in CUE_PALETTE]
        assert not {c.lower() for c in custom} & paper, colours
        assert len(set(custom)) == len(custom)  # distinct custom cues are told apart
    assert cue_colors(["SEE", "HEAR", "NONE"]) == CUE_PALETTE
    many = cue_colors([f"C{i}" for i in range(60)])  # beyond the free colours they repeat, still never a paper one
    assert not {c.lower() for c in many.values()} & paper
