"""Sensory word lists and the word-level text edits built on them.

A :class:`Lexicon` is a set of base forms (``glowing``, ``loud``, ``sound``) for one modality, loaded
from the CSVs shipped in ``data/lexicons`` (built from human norms by ``scripts/build_lexicons.py``;
see ``data/lexicons/README.md``) or from any CSV with a ``word`` column. Matching is inflection-aware
without a stemmer dependency: a text token matches when one of its candidate base forms (undoing
plural -s/-es, -ed, -ing, -er/-est, -ly, consonant doubling, y→ies/ied/ier, a dropped final e) is in
the lexicon, and participle entries also match their verb (``glowing`` → ``glow``, ``glows``, ``glowed``).

Text edits work on word spans (letters with inner apostrophes), so callers can highlight
(:func:`find_words`) or delete (:func:`remove_words`, :func:`remove_spans`) the same words.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from helpers.core.paths import resource_dir

MODALITIES = ("visual", "auditory")
#: every shipped list: the two sensory lexicons and the non-sensory control words (nouns people rate low
#: in all five modalities), which random-word controls draw from
WORD_LISTS = (*MODALITIES, "nonsensory")
#: ``data/lexicons`` of the checkout, or its copy inside the installed package
LEXICON_DIR = resource_dir("lexicons")

_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_VOWELS = set("aeiou")
_MIN_STEM = 3


def default_path(modality: str) -> Path:
    """The shipped CSV for ``modality`` (``data/lexicons/{modality}_words.csv``; one of :data:`WORD_LISTS`)."""
    return LEXICON_DIR / f"{_check_modality(modality)}_words.csv"


def _check_modality(modality: str) -> str:
    if modality not in WORD_LISTS:
        raise ValueError(f"modality must be one of {WORD_LISTS}, got {modality!r}")
    return modality


def candidate_bases(token: str) -> set[str]:
    """Possible base forms of one word (lower-cased), including the word itself.

    Over-generates on purpose (``shining`` → ``shin``, ``shine``); membership in a lexicon decides.
    Stems shorter than three letters are never proposed, so ``red`` or ``sing`` are not split.
    """
    w = token.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    w = w.replace("'", "")
    out = {w}

    def add_stem(stem: str) -> None:
        if len(stem) < _MIN_STEM:
            return
        out.add(stem)
        out.add(stem + "e")  # shining -> shine, whitest -> white
        if len(stem) > _MIN_STEM and stem[-1] == stem[-2] and stem[-1] not in _VOWELS:
            out.add(stem[:-1])  # bigger -> big, thudding -> thud

    for suffix in ("ing", "ed", "er", "est"):
        if w.endswith(suffix):
            stem = w[: -len(suffix)]
            add_stem(stem)
            if stem.endswith("i") and len(stem) >= _MIN_STEM:  # shinier, cried -> shiny, cry
                out.add(stem[:-1] + "y")
    if w.endswith("ies") and len(w) - 2 >= _MIN_STEM:  # cries -> cry
        out.add(w[:-3] + "y")
    if w.endswith("es") and len(w) - 2 >= _MIN_STEM:
        out.add(w[:-2])
    if w.endswith("s") and not w.endswith("ss") and len(w) - 1 >= _MIN_STEM:
        out.add(w[:-1])
    if w.endswith("ly") and len(w) - 2 >= _MIN_STEM:
        stem = w[:-2]
        out.update({stem, stem + "le"})  # loudly -> loud, gently -> gentle
        if stem.endswith("i"):
            out.add(stem[:-1] + "y")  # noisily -> noisy
    return out


def _participle_stems(word: str) -> set[str]:
    """Verb forms a participle entry stands for: ``glowing`` → {glow, glowe, ...}; others → {}."""
    if not word.endswith("ing") or len(word) - 3 < _MIN_STEM:
        return set()
    return {b for b in candidate_bases(word) if b != word}


@dataclass(frozen=True)
class Lexicon:
    """Base forms of one modality's sensory words.

    ``words`` are the lexicon's entries (spelling variants included); ``primary`` the entries without
    spelling variants, sorted (what random-word conditions sample from); ``forms`` what a token's
    candidate base forms are checked against (``words`` plus the verbs of participle entries).
    """

    modality: str
    words: frozenset[str]
    primary: tuple[str, ...] = ()
    source: str = ""
    forms: frozenset[str] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        if not self.primary:
            object.__setattr__(self, "primary", tuple(sorted(self.words)))
        if not self.forms:
            stems = set().union(*(_participle_stems(w) for w in self.words)) if self.words else set()
            object.__setattr__(self, "forms", frozenset(self.words | stems))

    def matches(self, token: str) -> bool:
        """Whether ``token`` (one word, any case, possibly inflected) is a word of this lexicon."""
        return not candidate_bases(token).isdisjoint(self.forms)

    def __len__(self) -> int:
        return len(self.primary)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.matches(token)


def load_lexicon(modality: str, path: str | Path | None = None) -> Lexicon:
    """Load one modality's word list from a CSV with a ``word`` column (default: the shipped list).

    An optional ``variant_of`` column marks spelling variants (matched, not sampled).
    """
    _check_modality(modality)
    path = Path(path) if path is not None else default_path(modality)
    if not path.is_file():
        raise FileNotFoundError(
            f"lexicon file {path} not found: pass the path of a CSV with a 'word' column, or rebuild the "
            "shipped lists with `.venv/bin/python scripts/build_lexicons.py` (needs ../shared/data/lexicons)"
        )
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "word" not in reader.fieldnames:
            raise ValueError(f"lexicon file {path} has no 'word' column (columns: {reader.fieldnames})")
        rows = list(reader)
    words, primary = set(), set()
    for i, row in enumerate(rows, start=2):
        word = (row.get("word") or "").strip().lower()
        if not word or not _WORD.fullmatch(word):
            raise ValueError(f"lexicon file {path}, line {i}: {row.get('word')!r} is not a single word")
        words.add(word)
        if not (row.get("variant_of") or "").strip():
            primary.add(word)
    if not words:
        raise ValueError(f"lexicon file {path} lists no words")
    return Lexicon(modality=modality, words=frozenset(words), primary=tuple(sorted(primary)), source=str(path))


def load_lexicons(paths: Mapping[str, str | Path | None] | None = None) -> dict[str, Lexicon]:
    """Every modality's lexicon (:data:`MODALITIES`, ``visual`` and ``auditory``): ``paths[modality]``
    when given and not None, else the shipped list."""
    paths = dict(paths or {})
    unknown = sorted(set(paths) - set(MODALITIES))
    if unknown:
        raise ValueError(f"no lexicon modality {unknown}; the modalities are {list(MODALITIES)}")
    return {modality: load_lexicon(modality, paths.get(modality)) for modality in MODALITIES}


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, word)`` for every word in ``text`` (letters with inner apostrophes)."""
    return [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def find_words(text: str, lexicon: Lexicon) -> list[tuple[int, int, str]]:
    """Character spans ``(start, end, word)`` of the words in ``text`` that ``lexicon`` matches."""
    return [span for span in word_spans(text) if lexicon.matches(span[2])]


def mark_words(text: str, lexicon: Lexicon, left: str = "[", right: str = "]") -> str:
    """``text`` with each word ``lexicon`` matches wrapped in ``left`` … ``right`` (plain-text
    highlighting, as notebook 08 prints removal examples; the playground's HTML is
    :func:`helpers.report.views.highlight_html`, over the same :func:`find_words`)."""
    out, pos = [], 0
    for start, end, word in find_words(text, lexicon):
        out += [text[pos:start], f"{left}{word}{right}"]
        pos = end
    return "".join(out + [text[pos:]])


def _merge(text: str, spans: Iterable[tuple[int, ...]]) -> list[tuple[int, int]]:
    """Sorted, merged ``(start, end)`` groups; spans joined only by hyphens form one group."""
    groups: list[list[int]] = []
    for start, end in sorted({(int(s[0]), int(s[1])) for s in spans}):
        if groups and (start <= groups[-1][1] or set(text[groups[-1][1] : start]) <= {"-"}):
            groups[-1][1] = max(groups[-1][1], end)
        else:
            groups.append([start, end])
    return [(a, b) for a, b in groups]


def remove_spans(text: str, spans: Iterable[tuple[int, int, str] | tuple[int, int]]) -> str:
    """``text`` without the given word spans, with spacing and punctuation kept sane.

    Each removed word takes one neighbouring space with it (the one before it, or the one after it at
    the start of the text, a line or a bracket); a hyphen joining it to a kept word goes too
    (``bright-red`` minus ``red`` → ``bright``). Everything else, newlines included, stays as it was.
    """
    out: list[str] = []
    pos = 0
    for start, end in _merge(text, spans):
        if end < len(text) - 1 and text[end] == "-" and text[end + 1].isalpha():
            end += 1  # "red-brown" minus "red" -> "brown"
        elif start > pos and text[start - 1] == "-" and start >= 2 and text[start - 2].isalpha():
            start -= 1  # "bright-red" minus "red" -> "bright"
        chunk = text[pos:start]
        after = text[end : end + 1]
        line_start = (start == 0) or chunk.endswith(("\n", "(", "[", '"', "“")) or (not chunk and not out)
        if line_start and after == " ":
            end += 1  # "Red ball" -> "ball"
        elif chunk.endswith(" ") and (after in ("", " ", "\n") or after in ",.;:!?)]'\"’”"):
            chunk = chunk[:-1]  # "a red ball" -> "a ball"; "very red." -> "very."
        out.append(chunk)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def remove_words(text: str, predicate: Callable[[str], bool]) -> tuple[str, int]:
    """``(edited text, number of words removed)`` deleting every word for which ``predicate`` holds.

    ``predicate`` gets one word at a time, e.g. ``lexicon.matches``.
    """
    spans = [s for s in word_spans(text) if predicate(s[2])]
    return remove_spans(text, spans), len(spans)
