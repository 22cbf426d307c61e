"""Build the shipped word lists ``data/lexicons/{visual,auditory,nonsensory}_words.csv`` from human norms.

Source: the Lynott & Connell modality norms as kept in ``../shared/data/lexicons`` (object-property
adjectives, 2009; nouns, 2013), each word rated 0-5 by people for how strongly it is experienced by
seeing, hearing, touching, tasting and smelling. The derivation rule (also in data/lexicons/README.md):

1. take every word of both norm sets;
2. keep it for modality M (visual or auditory) when
   - the norms' dominant modality is M,
   - its mean M-strength is at least ``--threshold`` (default 3.5 of 5) for adjectives and
     ``--noun-threshold`` (default 4.5) for nouns: the 2013 set is a sample of common nouns, many of them
     abstract (``tax``, ``majority``, ``business``), which people still rate 3.5-4.5 "visual"; the higher bar
     keeps the nouns that are perceived first of all (``sight``, ``fog``, ``window``; ``sound``, ``music``), and
   - its M-strength exceeds every other modality's strength by at least ``--margin`` (default 1.0),
     so that words people rate about as visual as auditory (``phone``, ``band``) count as neither;
3. drop a word that qualifies under different modalities in the two norm sets (none at the defaults)
   and the words in :data:`EXCLUDED` (homographs whose usual sense in running text is not the rated
   one; at the defaults only ``race``);
4. for adjectives whose British spelling differs (``grey``/``gray``) add the British form as an extra
   row with ``variant_of`` set, so matching finds both and sampling draws the word once.

The **non-sensory** list (the words of notebook 08's non-sensory random-word control): the nouns of the 2013
set whose strength in every one of the five modalities is at most ``--nonsensory-max`` (default 3.0 of 5), and
that are in neither sensory list: abstract or hardly perceived nouns (``theory``, ``duty``, ``century``). Only
nouns: the 2009 adjectives are object properties chosen for being perceived.

Sensicon (also in the shared folder) is not used: its scores are derived automatically from corpora,
not rated by people. The output is sorted and rounded so that rebuilding reproduces it byte for byte::

    .venv/bin/python scripts/build_lexicons.py          # reads $PERCEIVE_SHARED/lexicons or ../shared/data/lexicons
    .venv/bin/python scripts/build_lexicons.py --source DIR --out data/lexicons
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import pandas as pd

from helpers.core.paths import shared_data_root

MODALITIES = ("Visual", "Auditory", "Haptic", "Gustatory", "Olfactory")
TARGETS = {"visual": "Visual", "auditory": "Auditory"}
ADJECTIVES = "lynott_connell_2009_adjectives.csv"
NOUNS = "lynott_connell_2013_nouns.csv"
#: the lists are rebuilt into the checkout this script belongs to, wherever ``helpers`` is imported from
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "lexicons"
COLUMNS = [
    "word",
    "pos",
    "source",
    "variant_of",
    "visual",
    "auditory",
    "haptic",
    "gustatory",
    "olfactory",
    "exclusivity",
    "margin",
]

#: Words that pass the numeric rule but whose usual sense in running text is not the rated one.
EXCLUDED: dict[str, str] = {
    "race": "homograph: in generated text mostly a contest or ethnicity, not the rated spectacle",
}


def load_norms(source: Path) -> pd.DataFrame:
    """Both norm sets as one table: word, pos, source, british spelling, five strengths, exclusivity."""
    missing = [name for name in (ADJECTIVES, NOUNS) if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{source} lacks {missing}: point --source at the folder holding the Lynott & Connell norms "
            "(../shared/data/lexicons in the project layout)"
        )
    frames = []
    for name, pos in ((ADJECTIVES, "adjective"), (NOUNS, "noun")):
        df = pd.read_csv(source / name)
        out = pd.DataFrame(
            {
                "word": df["Word"].str.strip().str.lower(),
                "pos": pos,
                "source": name.removesuffix(".csv"),
                "british": df["PropertyBritish"].str.strip().str.lower() if "PropertyBritish" in df else df["Word"],
                "dominant": df["DominantModality"].str.strip(),
                "exclusivity": df["ModalityExclusivity"],
            }
        )
        for m in MODALITIES:
            out[m.lower()] = df[f"{m}StrengthMean"].astype(float)
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


def select(norms: pd.DataFrame, modality: str, threshold: float, noun_threshold: float, margin: float) -> pd.DataFrame:
    """Rows of ``norms`` that qualify for ``modality`` under the numeric rule (steps 1-2)."""
    target = TARGETS[modality]
    others = [m.lower() for m in MODALITIES if m != target]
    norms = norms.assign(margin=norms[target.lower()] - norms[others].max(axis=1))
    bar = norms["pos"].map({"adjective": threshold, "noun": noun_threshold})
    keep = (norms["dominant"] == target) & (norms[target.lower()] >= bar) & (norms["margin"] >= margin)
    return norms[keep]


def select_nonsensory(norms: pd.DataFrame, most: float) -> pd.DataFrame:
    """Nouns rated at most ``most`` in every modality (the non-sensory list, before removing sensory words)."""
    strengths = norms[[m.lower() for m in MODALITIES]]
    nouns = norms.assign(margin=most - strengths.max(axis=1))  # how far below the bar its strongest modality is
    return nouns[(nouns["pos"] == "noun") & (strengths.max(axis=1) <= most)]


def build(
    source: Path, threshold: float = 3.5, noun_threshold: float = 4.5, margin: float = 1.0, nonsensory_max: float = 3.0
) -> dict[str, list[dict]]:
    """The rows of each shipped CSV (``{"visual": [...], "auditory": [...], "nonsensory": [...]}``), sorted by word."""
    norms = load_norms(source)
    chosen = {m: select(norms, m, threshold, noun_threshold, margin) for m in TARGETS}
    sensory = set(chosen["visual"]["word"]) | set(chosen["auditory"]["word"])
    chosen["nonsensory"] = select_nonsensory(norms, nonsensory_max).loc[lambda d: ~d["word"].isin(sensory)]
    conflicted = set(chosen["visual"]["word"]) & set(chosen["auditory"]["word"])
    out: dict[str, list[dict]] = {}
    for modality, df in chosen.items():
        df = df[~df["word"].isin(conflicted) & ~df["word"].isin(EXCLUDED)]
        df = df.sort_values(["word", "pos"]).drop_duplicates("word", keep="first")  # 'faint' is in both sets
        rows = []
        for r in df.itertuples(index=False):
            base = {
                "word": r.word,
                "pos": r.pos,
                "source": r.source,
                "variant_of": "",
                **{m.lower(): f"{getattr(r, m.lower()):.4f}" for m in MODALITIES},
                "exclusivity": f"{r.exclusivity:.4f}",
                "margin": f"{r.margin:.4f}",
            }
            rows.append(base)
            if r.british and r.british != r.word:
                rows.append({**base, "word": r.british, "variant_of": r.word})
        out[modality] = sorted(rows, key=lambda row: (row["word"], row["variant_of"]))
    return out


def write(rows: dict[str, list[dict]], out_dir: Path) -> dict[str, Path]:
    """Write ``{modality}_words.csv`` into ``out_dir`` (LF line ends, fixed column order)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for modality, table in rows.items():
        path = out_dir / f"{modality}_words.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(table)
        paths[modality] = path
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--source",
        type=Path,
        default=shared_data_root() / "lexicons",
        help="folder with the norms (default: $PERCEIVE_SHARED/lexicons or ../shared/data/lexicons)",
    )
    parser.add_argument("--out", type=Path, default=SHIPPED, help="where to write the lists (default: data/lexicons)")
    parser.add_argument("--threshold", type=float, default=3.5)
    parser.add_argument("--noun-threshold", type=float, default=4.5)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--nonsensory-max", type=float, default=3.0)
    args = parser.parse_args(argv)
    rows = build(args.source, args.threshold, args.noun_threshold, args.margin, args.nonsensory_max)
    for modality, path in write(rows, args.out).items():
        table = rows[modality]
        primary = [r for r in table if not r["variant_of"]]
        by_pos = {p: sum(r["pos"] == p for r in primary) for p in ("adjective", "noun")}
        print(f"{path}: {len(primary)} words ({by_pos}), {len(table) - len(primary)} spelling variants")
    return 0


if __name__ == "__main__":
    sys.exit(main())
