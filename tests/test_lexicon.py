"""Sensory word lists: reproducible derivation, inflection-aware matching, spans and removal."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from helpers.core.paths import PROJECT_ROOT
from helpers.data.lexicon import (
    Lexicon,
    candidate_bases,
    default_path,
    find_words,
    load_lexicon,
    load_lexicons,
    remove_spans,
    remove_words,
    word_spans,
)

SCRIPT = PROJECT_ROOT / "scripts" / "build_lexicons.py"


@pytest.mark.functional
def test_build_script_reproduces_shipped_lists(shared_data, tmp_path):
    source = shared_data / "lexicons"
    if not (source / "lynott_connell_2009_adjectives.csv").is_file():
        pytest.skip(f"Lynott & Connell norms not found under {source}")
    subprocess.run(
        [sys.executable, str(SCRIPT), "--source", str(source), "--out", str(tmp_path)], check=True, capture_output=True
    )
    for modality in ("visual", "auditory", "nonsensory"):
        built = (tmp_path / f"{modality}_words.csv").read_bytes()
        assert built == default_path(modality).read_bytes(), f"{modality}: rebuild differs from shipped CSV"


def test_shipped_lists_follow_the_rule():
    for modality, other in (("visual", "auditory"), ("auditory", "visual")):
        with default_path(modality).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows, modality
        for r in rows:
            bar = 3.5 if r["pos"] == "adjective" else 4.5
            assert float(r[modality]) >= bar, r
            assert float(r["margin"]) >= 1.0 and float(r[modality]) - float(r[other]) >= 1.0 - 1e-3, r
    visual, auditory = load_lexicon("visual"), load_lexicon("auditory")
    assert visual.words.isdisjoint(auditory.words)
    assert {"red", "glowing", "sight"} <= visual.words and {"loud", "sound", "whispering"} <= auditory.words
    assert "race" not in visual.words  # excluded homograph
    assert "grey" in visual.words and "grey" not in visual.primary and "gray" in visual.primary


def test_the_nonsensory_list_is_nouns_rated_low_in_every_modality():
    with default_path("nonsensory").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 50 and {r["pos"] for r in rows} == {"noun"}
    for r in rows:
        assert max(float(r[m]) for m in ("visual", "auditory", "haptic", "gustatory", "olfactory")) <= 3.0, r
    words = load_lexicon("nonsensory")
    assert {"theory", "duty", "century"} <= words.words
    assert words.words.isdisjoint(load_lexicon("visual").words | load_lexicon("auditory").words)


@pytest.mark.parametrize(
    "token, base",
    [
        ("glows", "glow"),
        ("glowing", "glow"),
        ("glowed", "glow"),
        ("shining", "shine"),
        ("shines", "shine"),
        ("bigger", "big"),
        ("thudding", "thud"),
        ("tinier", "tiny"),
        ("cries", "cry"),
        ("cried", "cry"),
        ("whitest", "white"),
        ("loudly", "loud"),
        ("noisily", "noisy"),
        ("boxes", "box"),
        ("Sky's", "sky"),
        ("gently", "gentle"),
    ],
)
def test_candidate_bases(token, base):
    assert base in candidate_bases(token)


def test_short_words_are_not_split():
    assert candidate_bases("red") == {"red"}
    assert "s" not in candidate_bases("sing") and "th" not in candidate_bases("thing")


def test_matches_inflections_and_participle_verbs():
    lex = Lexicon("visual", frozenset({"glowing", "shine", "red", "tiny", "big"}))
    for token in [
        "glow",
        "glows",
        "glowed",
        "Glowing",
        "shine",
        "shining",
        "shines",
        "shined",
        "RED",
        "redder",
        "reddest",
        "tinier",
        "tiniest",
        "bigger",
    ]:
        assert lex.matches(token), token
    for token in ["bed", "shin", "tin", "bigot", "glove", "reed", "the"]:
        assert not lex.matches(token), token


def test_find_words_spans():
    lex = load_lexicon("auditory")
    text = "A loud bang, then whispers; the Music fades."
    spans = find_words(text, lex)
    assert [w for _, _, w in spans] == ["loud", "bang", "whispers", "Music"]  # bang: verb of 'banging'
    assert all(text[s:e] == w for s, e, w in spans)


@pytest.mark.parametrize(
    "text, expected, n",
    [
        ("a red ball", "a ball", 1),
        ("Red ball.", "ball.", 1),
        ("very red.", "very.", 1),
        ("a bright-red kite", "a kite", 2),
        ("a red-brown dog", "a brown dog", 1),
        ("the sky, red and gray, glows", "the sky, and,", 3),
        ("line one\nRed sky", "line one\nsky", 1),
        ("no colour words here", "no colour words here", 0),
    ],
)
def test_remove_words(text, expected, n):
    lex = Lexicon("visual", frozenset({"red", "gray", "glowing", "bright"}))
    assert remove_words(text, lex.matches) == (expected, n)


def test_remove_spans_by_index_and_word_spans():
    text = "one two three"
    spans = word_spans(text)
    assert [w for *_, w in spans] == ["one", "two", "three"]
    assert remove_spans(text, [spans[1]]) == "one three"
    assert remove_spans(text, []) == text


def test_load_lexicon_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_lexicons"):
        load_lexicon("visual", tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="modality"):
        load_lexicon("smell")
    bad = tmp_path / "bad.csv"
    bad.write_text("term\nred\n")
    with pytest.raises(ValueError, match="'word' column"):
        load_lexicon("visual", bad)
    custom = tmp_path / "custom.csv"
    custom.write_text("word\nRed\nglowing\n")
    lex = load_lexicon("visual", custom)
    assert lex.words == {"red", "glowing"} and lex.matches("glows") and lex.modality == "visual"


def test_load_lexicons_gives_both_senses_and_names_an_unknown_one(tmp_path):
    own = tmp_path / "mine.csv"
    own.write_text("word\nglowing\nshimmer\n")
    both = load_lexicons({"visual": own, "auditory": None})
    assert list(both) == ["visual", "auditory"] and both["visual"].words == {"glowing", "shimmer"}
    assert len(both["auditory"]) == len(load_lexicon("auditory"))
    with pytest.raises(ValueError, match=r"no lexicon modality \['vision'\]"):
        load_lexicons({"vision": own})
