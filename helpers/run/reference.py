"""A run checked against the committed reference: item by item, table by table, with a verdict.

``reference/<profile>/`` holds what a run of that profile produced on the machine that wrote it:
every results table (``*.csv``), a fingerprint of each generation (``generations.csv``: item,
cue, token count, EOS, a hash of the token ids) and the library versions (``versions.json``).
:func:`compare_run` compares a run of yours with it and :func:`Report.verdict` says
``reproduced``, ``reproduced up to near-ties`` or ``differs``, and where, by how much.

Tolerance, and why. Greedy decoding on the same library versions gives the same tokens, so the
generations must match exactly. The representations are then float32 sums whose order depends on
the thread count and batch shapes (≈ 1e-6 relative), so continuous values must agree to
``rtol = 1e-4, atol = 1e-6``. A mutual-k-NN score counts shared neighbours: a float-level change
can swap two neighbours that were tied to 1e-7 and move the score by exactly one neighbour,
1 / (k·n) (0.001 at k = 10, n = 101), with its CI and p-value moving by as little. A run whose
every difference is of that size (at most :data:`NEAR_TIE_STEPS` neighbour steps, and in a small
share of the cells) is "reproduced up to near-ties"; anything larger "differs".

    python -m helpers.run.reference [--run default] [--reference reference/default]    (make check-reference)
    python -m helpers.run.reference --write --run default    (refresh the reference from a run: make reference)
    perceive-check-reference --run default    (the same check, as installed by the package)

An installed package reads the reference runs it ships (see :mod:`helpers.core.paths`); ``--write`` there
needs ``--reference DIR``, since the shipped copy is not the committed one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from helpers.core.paths import INSTALLED, PROJECT_ROOT, resource_dir
from helpers.core.runtime import ENCODER_PACKAGES, LLM_PACKAGES, package_versions

#: ``reference/`` of the checkout, or its copy inside the installed package
REFERENCE_ROOT = resource_dir("reference")
GENERATIONS = "generations.csv"
VERSIONS = "versions.json"
FIGURES = "figures"
FINDINGS = "FINDINGS.md"
NOTEBOOK_TITLES = {
    "05": "05 · Alignment",
    "06": "06 · Generation length and layers",
    "07": "07 · Statistics",
    "08": "08 · Sensory words",
    "09": "09 · Model size",
}
#: the figures the README shows, copied from the run by ``make reference`` so they never drift from the code
HEADLINE_FIGURES = (
    "05_alignment_bars",
    "05_alignment_scatter",
    "06_length_curve",
    "07_paired_comparisons",
    "08_sensory_words",
    "09_model_size_aisfx",
)
IGNORED_COLUMNS = frozenset({"run"})  # the run's own name: yours may differ
RTOL, ATOL = 1e-4, 1e-6
NEAR_TIE_STEPS = 2  # a near-tie moves a score by one neighbour, 1/(k n); its CI bounds by about as much
NEAR_TIE_SHARE = 0.02  # ... and touches few cells
#: what determines the numbers: the LLM and encoder numerics (as in the cache keys) and the analysis
LIBRARIES = tuple(dict.fromkeys((*LLM_PACKAGES, *ENCODER_PACKAGES, "pandas", "scipy", "scikit-learn")))


@dataclass(frozen=True)
class Difference:
    """One cell (or one generation) where the run and the reference disagree."""

    table: str
    row: str
    column: str
    reference: object
    run: object
    size: float  # |run - reference|, inf where not numeric
    near_tie: bool


@dataclass
class Report:
    """What :func:`compare_run` found."""

    reference: Path
    tables: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the reference, not in the run
    extra: list[str] = field(default_factory=list)  # in the run only (not compared)
    structure: list[str] = field(default_factory=list)  # shape, columns or row keys that differ
    differences: list[Difference] = field(default_factory=list)
    cells: int = 0
    generations: tuple[int, int] = (0, 0)  # identical, compared
    versions: dict[str, tuple[str, str]] = field(default_factory=dict)  # library: (reference, run) where they differ

    @property
    def verdict(self) -> str:
        if self.missing or self.structure or any(not d.near_tie for d in self.differences):
            return "differs"
        if self.generations[0] != self.generations[1]:
            return "differs"
        if not self.differences:
            return "reproduced"
        if len(self.differences) <= max(1, NEAR_TIE_SHARE * self.cells):
            return "reproduced up to near-ties"
        return "differs"

    def format(self, limit: int = 15) -> str:
        same, total = self.generations
        lines = [
            f"reference: {self.reference}",
            f"generations: {same} of {total} identical (token ids)" if total else "generations: not compared",
            f"tables: {len(self.tables)} compared, {self.cells} numeric cells; "
            f"{len(self.differences)} differ beyond rtol {RTOL:g} / atol {ATOL:g} "
            f"({sum(d.near_tie for d in self.differences)} of them near-ties)",
        ]
        lines += [f"missing from your run: {name}" for name in self.missing]
        lines += [f"structure: {s}" for s in self.structure]
        worst = sorted(self.differences, key=lambda d: (d.near_tie, -d.size))[:limit]
        for d in worst:
            tag = "near-tie" if d.near_tie else "DIFFERS"
            size = f"{d.size:.3g}" if math.isfinite(d.size) else "-"
            lines.append(
                f"  {tag:<8} {d.table} [{d.row}] {d.column}: reference {d.reference!r}, yours {d.run!r} (|diff| {size})"
            )
        if len(self.differences) > limit:
            lines.append(f"  ... and {len(self.differences) - limit} more")
        for lib, (ref, run) in self.versions.items():
            lines.append(
                f"versions: {lib} {run} here, {ref} in the reference (greedy tokens are only promised on the same versions)"
            )
        if self.extra:
            lines.append(f"not in the reference (not compared): {', '.join(self.extra)}")
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)


def generation_fingerprints(gens: pd.DataFrame) -> pd.DataFrame:
    """One row per generation: ``id``, ``cue``, ``n_gen_tokens``, ``stopped_at_eos`` and ``tokens_sha256``
    (the first 16 hex digits of the SHA-256 of the token ids), sorted by id and cue."""
    missing = {"id", "cue", "gen_ids", "stopped_at_eos"} - set(gens.columns)
    if missing:
        raise ValueError(f"the generations table lacks {sorted(missing)}: is it notebook 02's generations.parquet?")
    out = pd.DataFrame(
        {
            "id": gens["id"].astype(str),
            "cue": gens["cue"].astype(str),
            "n_gen_tokens": [len(g) for g in gens["gen_ids"]],
            "stopped_at_eos": gens["stopped_at_eos"].astype(bool),
            "tokens_sha256": [
                hashlib.sha256(json.dumps([int(t) for t in g]).encode()).hexdigest()[:16] for g in gens["gen_ids"]
            ],
        }
    )
    return out.sort_values(["id", "cue"], kind="stable").reset_index(drop=True)


def library_versions() -> dict[str, str]:
    """Python and the versions of the libraries that determine the numbers (:data:`LIBRARIES`)."""
    versions = package_versions(LIBRARIES)
    return {"python": sys.version.split()[0]} | {k: v or "absent" for k, v in versions.items()}


def _key_columns(df: pd.DataFrame) -> list[str]:
    """The columns that name a row: not floats, not the same in every row."""
    return [
        c
        for c in df.columns
        if c not in IGNORED_COLUMNS and not pd.api.types.is_float_dtype(df[c]) and df[c].astype(str).nunique() > 1
    ]


def _row_label(row: pd.Series, keys: list[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys) or f"row {row.name}"


def _neighbour_step(row: pd.Series) -> float | None:
    """1/(k n) for a row that names its k and its item count, else None."""
    k = row.get("k")
    n = next((row[c] for c in ("n_items", "n") if c in row.index and pd.notna(row[c])), None)
    try:
        k, n = float(k), float(n)
    except (TypeError, ValueError):
        return None
    return 1.0 / (k * n) if k > 0 and n > 0 else None


def compare_tables(name: str, reference: pd.DataFrame, run: pd.DataFrame, report: Report) -> None:
    """Compare one results table cell by cell (rows in order; non-float columns are the rows' keys)."""
    ref = reference.drop(columns=[c for c in IGNORED_COLUMNS if c in reference.columns])
    got = run.drop(columns=[c for c in IGNORED_COLUMNS if c in run.columns])
    if list(ref.columns) != list(got.columns) or len(ref) != len(got):
        report.structure.append(
            f"{name}: reference {len(ref)} rows x {list(ref.columns)}, yours {len(got)} rows x {list(got.columns)}"
        )
        return
    keys = _key_columns(ref)
    for i in range(len(ref)):
        r, g = ref.iloc[i], got.iloc[i]
        step = _neighbour_step(r)
        for col in ref.columns:
            a, b = r[col], g[col]
            numeric = pd.api.types.is_number(a) and pd.api.types.is_number(b) and not isinstance(a, bool)
            if numeric:
                report.cells += 1
                a, b = float(a), float(b)
                if (math.isnan(a) and math.isnan(b)) or (
                    not math.isnan(a) and not math.isnan(b) and abs(a - b) <= ATOL + RTOL * abs(a)
                ):
                    continue
                size = abs(a - b) if not (math.isnan(a) or math.isnan(b)) else math.inf
                near = step is not None and size <= NEAR_TIE_STEPS * step + ATOL
                report.differences.append(Difference(name, _row_label(r, keys), col, a, b, size, near))
            elif str(a) != str(b):
                report.differences.append(Difference(name, _row_label(r, keys), col, a, b, math.inf, False))


def _compare_generations(ref_path: Path, gens: pd.DataFrame | None, report: Report) -> None:
    if not ref_path.is_file() or gens is None:
        return
    ref = pd.read_csv(ref_path, dtype={"id": str, "cue": str, "tokens_sha256": str})
    got = generation_fingerprints(gens)
    merged = ref.merge(got, on=["id", "cue"], how="left", suffixes=("_ref", "_run"), indicator=True)
    absent = merged[merged["_merge"] == "left_only"]
    for _, row in absent.iterrows():
        report.differences.append(
            Difference(
                GENERATIONS, f"id={row['id']}, cue={row['cue']}", "generation", "present", "absent", math.inf, False
            )
        )
    both = merged[merged["_merge"] == "both"]
    same = both["tokens_sha256_ref"] == both["tokens_sha256_run"]
    for _, row in both[~same].iterrows():
        report.differences.append(
            Difference(
                GENERATIONS,
                f"id={row['id']}, cue={row['cue']}",
                "tokens",
                f"{int(row['n_gen_tokens_ref'])} tokens {row['tokens_sha256_ref']}",
                f"{int(row['n_gen_tokens_run'])} tokens {row['tokens_sha256_run']}",
                math.inf,
                False,
            )
        )
    report.generations = (int(same.sum()), len(ref))


def compare_run(results: Path, reference: Path, generations: pd.DataFrame | None = None) -> Report:
    """Compare the results tables in ``results`` (and ``generations``, notebook 02's table) with ``reference``."""
    results, reference = Path(results), Path(reference)
    if not reference.is_dir() or not any(reference.glob("*.csv")):
        raise FileNotFoundError(
            f"no reference tables in {reference}: write one with `python -m helpers.run.reference --write`"
        )
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder {results}: run the notebooks first (make reproduce)")
    report = Report(reference=reference)
    ref_tables = sorted(p.name for p in reference.glob("*.csv") if p.name != GENERATIONS)
    run_tables = sorted(p.name for p in results.glob("*.csv"))
    report.missing = [t for t in ref_tables if t not in run_tables]
    report.extra = [t for t in run_tables if t not in ref_tables]
    for name in ref_tables:
        if name in run_tables:
            report.tables.append(name)
            compare_tables(name, pd.read_csv(reference / name), pd.read_csv(results / name), report)
    _compare_generations(reference / GENERATIONS, generations, report)
    if (reference / VERSIONS).is_file():
        ref_versions = json.loads((reference / VERSIONS).read_text()).get("libraries", {})
        here = library_versions()
        report.versions = {k: (v, here.get(k, "absent")) for k, v in ref_versions.items() if here.get(k) != v}
    return report


def write_reference(
    results: Path, reference: Path, generations: pd.DataFrame | None, profile: str, figures: Path | None = None
) -> list[Path]:
    """Copy a run's results tables, its generation fingerprints, the library versions and (from ``figures``,
    the run's figure folder) the PNGs of :data:`HEADLINE_FIGURES` that exist into ``reference``."""
    reference = Path(reference)
    tables = sorted(Path(results).glob("*.csv"))
    if not tables:
        raise FileNotFoundError(f"no results tables in {results}: run the notebooks first (make reproduce)")
    tmp = reference.with_name(reference.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for p in tables:
        shutil.copy2(p, tmp / p.name)
    if generations is not None:
        generation_fingerprints(generations).to_csv(tmp / GENERATIONS, index=False)
    (tmp / VERSIONS).write_text(json.dumps({"profile": profile, "libraries": library_versions()}, indent=2) + "\n")
    if (summary := findings_summary(Path(results), profile)) is not None:
        (tmp / FINDINGS).write_text(summary)
    pngs = [Path(figures) / f"{stem}.png" for stem in HEADLINE_FIGURES] if figures is not None else []
    if any(p.is_file() for p in pngs):
        (tmp / FIGURES).mkdir()
        for png in filter(Path.is_file, pngs):
            shutil.copy2(png, tmp / FIGURES / png.name)
    shutil.rmtree(reference, ignore_errors=True)
    tmp.rename(reference)
    return sorted(reference.iterdir())


README_CLAIMS = (
    "<!-- claims:start (written by make reference from the default run's findings tables; do not edit) -->",
    "<!-- claims:end -->",
)


def write_readme_claims(readme: Path, results: Path) -> bool:
    """Replace the README's block between :data:`README_CLAIMS` with :func:`helpers.analyses.findings.run_summary` of
    ``results``' findings tables; False (README untouched) when it has no such block or there are no tables."""
    from helpers.analyses import findings

    tables = sorted(Path(results).glob("findings_*.csv"))
    text = readme.read_text() if readme.is_file() else ""
    start, end = README_CLAIMS
    if not tables or start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    body = findings.run_summary([findings.read(p) for p in tables])
    readme.write_text(f"{head}{start}\n{body}\n{end}{tail}")
    return True


def findings_summary(results: Path, profile: str) -> str | None:
    """The "What this shows" cells of 05–09 (:func:`helpers.analyses.findings.report` of each ``findings_NN.csv``) on one page."""
    from helpers.analyses import findings

    tables = sorted(Path(results).glob("findings_*.csv"))
    if not tables:
        return None
    parts = [
        f"# What the `{profile}` run shows",
        "",
        "Rendered by `make reference` from the `findings_NN.csv` tables of the run in this folder; the same text ends "
        "each analysis notebook. Regenerate it, never edit it.",
        "",
        "## The paper's claims in one place",
        "",
        findings.run_summary([findings.read(p) for p in tables]),
        "",
    ]
    for path in tables:
        nb = path.stem.split("_", 1)[1]
        body = findings.report(findings.read(path))
        parts += [f"## {NOTEBOOK_TITLES.get(nb, nb)}", "", body.replace("### What this shows\n\n", "", 1), ""]
    return "\n".join(parts)


def load_generations(run) -> pd.DataFrame | None:
    """A run's generations table (notebook 02's), or None where it has none."""
    from helpers.data.artifacts import load_table

    return load_table(run.generations) if run.generations.is_file() else None


def _run_inputs(run_name: str, outputs: Path | None) -> tuple[Path, pd.DataFrame | None, Path]:
    from helpers.data.artifacts import RunPaths

    run = RunPaths.of(run_name, outputs)
    return run.results, load_generations(run), run.figures


def main(argv: list[str] | None = None) -> int:
    """The ``perceive-check-reference`` command (also ``python -m helpers.run.reference``); returns the exit status."""
    script = "perceive-check-reference"
    prog = script if Path(sys.argv[0]).name == script else "python -m helpers.run.reference"
    ap = argparse.ArgumentParser(
        prog=prog, description="Compare a run with the committed reference (or write the reference)."
    )
    ap.add_argument("--run", default="default", help="the run's name under outputs/ (default: default)")
    ap.add_argument("--reference", type=Path, help="reference folder (default: reference/<run>)")
    ap.add_argument("--outputs", type=Path, help="outputs root (default: PERCEIVE_OUTPUTS or outputs/)")
    ap.add_argument("--write", action="store_true", help="write the reference from this run instead of comparing")
    args = ap.parse_args(argv)
    if args.write and INSTALLED and args.reference is None:
        print(
            "error: --write needs --reference DIR when the package is installed (its copy is read-only)",
            file=sys.stderr,
        )
        return 2
    reference = args.reference or REFERENCE_ROOT / args.run
    results, gens, figures = _run_inputs(args.run, args.outputs)
    try:
        if args.write:
            written = write_reference(results, reference, gens, args.run, figures)
            print(f"wrote {len(written)} files to {reference}")
            if (
                args.run == "default"
                and args.reference is None
                and write_readme_claims(PROJECT_ROOT / "README.md", results)
            ):
                print("rewrote the README's claims block from the run's findings")
            return 0
        report = compare_run(results, reference, gens)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.format())
    return 0 if report.verdict.startswith("reproduced") else 1


if __name__ == "__main__":
    raise SystemExit(main())
