"""helpers.run.reference: a run compared with the reference says reproduced, near-ties or differs, and where."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers.data.artifacts import RunPaths, save_table
from helpers.run import reference as R

K, N = 10, 101
STEP = 1 / (K * N)  # one shared neighbour of one item: the smallest move of a mutual-k-NN score


def _alignment() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {
            "run": "default",
            "cue": c,
            "encoder": e,
            "n_items": N,
            "k": K,
            "score": s,
            "ci_low": s - 0.01,
            "ci_high": s + 0.01,
        }
        for c in ("SEE", "HEAR", "NONE")
        for e, s in zip(("vision", "audio"), rng.uniform(0.1, 0.2, 2))
    ]
    return pd.DataFrame(rows)


def _generations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "a", "b"],
            "cue": ["SEE", "HEAR", "SEE"],
            "gen_ids": [[5, 6, 7], [8, 9], []],
            "stopped_at_eos": [False, True, True],
        }
    )


def _run(root, name="mine", alignment=None, gens=None):
    run = RunPaths.of(name, root)
    run.results.mkdir(parents=True, exist_ok=True)
    (alignment if alignment is not None else _alignment()).to_csv(run.results / "alignment.csv", index=False)
    pd.DataFrame({"run": [name], "T": [8], "p": [0.03]}).to_csv(run.results / "length_curve.csv", index=False)
    save_table(gens if gens is not None else _generations(), run.generations)
    return run


@pytest.fixture
def ref(tmp_path):
    run = _run(tmp_path / "ref_outputs", "default")
    R.write_reference(run.results, tmp_path / "reference", pd.read_parquet(run.generations), "default")
    return tmp_path / "reference"


def _compare(run, ref):
    return R.compare_run(run.results, ref, pd.read_parquet(run.generations))


def test_the_reference_holds_tables_fingerprints_and_versions(ref):
    assert sorted(p.name for p in ref.iterdir()) == [
        "alignment.csv",
        "generations.csv",
        "length_curve.csv",
        "versions.json",
    ]
    fp = pd.read_csv(ref / "generations.csv")
    assert list(fp["n_gen_tokens"]) == [2, 3, 0] and list(fp["cue"]) == ["HEAR", "SEE", "SEE"]  # sorted by id, cue
    assert json.loads((ref / "versions.json").read_text())["libraries"]["numpy"] == np.__version__


def test_an_identical_run_under_another_name_is_reproduced(tmp_path, ref):
    report = _compare(_run(tmp_path / "out"), ref)
    assert report.verdict == "reproduced" and report.generations == (3, 3)
    assert report.cells == 6 * 5 + 2  # n_items, k, score, ci_low, ci_high in 6 rows; T and p
    assert "verdict: reproduced" in report.format()


def test_float_noise_within_tolerance_is_reproduced(tmp_path, ref):
    a = _alignment()
    a["score"] = a["score"] * (1 + 1e-6)
    assert _compare(_run(tmp_path / "out", alignment=a), ref).verdict == "reproduced"


def test_one_neighbour_near_tie_is_named_but_tolerated(tmp_path, ref):
    a = _alignment()
    a.loc[3, "score"] += STEP
    report = _compare(_run(tmp_path / "out", alignment=a), ref)
    assert report.verdict == "reproduced up to near-ties"
    (d,) = report.differences
    assert (d.table, d.column, d.near_tie) == ("alignment.csv", "score", True)
    assert d.row == "cue=HEAR, encoder=audio" and d.size == pytest.approx(STEP)


def test_a_planted_difference_differs_and_says_where_by_how_much(tmp_path, ref):
    a = _alignment()
    a.loc[0, "score"] += 0.05  # SEE × vision: fifty neighbour steps
    report = _compare(_run(tmp_path / "out", alignment=a), ref)
    assert report.verdict == "differs"
    (d,) = report.differences
    assert (d.row, d.column, d.near_tie) == ("cue=SEE, encoder=vision", "score", False)
    assert d.size == pytest.approx(0.05)
    text = report.format()
    line = next(x for x in text.splitlines() if "DIFFERS" in x)
    assert "alignment.csv [cue=SEE, encoder=vision] score" in line and "|diff| 0.05" in line


def test_a_changed_generation_differs(tmp_path, ref):
    gens = _generations()
    gens.at[0, "gen_ids"] = [5, 6, 1]
    report = _compare(_run(tmp_path / "out", gens=gens), ref)
    assert report.verdict == "differs" and report.generations == (2, 3)
    assert [(d.table, d.row, d.column) for d in report.differences] == [("generations.csv", "id=a, cue=SEE", "tokens")]


def test_missing_tables_rows_and_nan_mismatches_differ(tmp_path, ref):
    run = _run(tmp_path / "out")
    (run.results / "length_curve.csv").unlink()
    pd.DataFrame({"x": [1.0]}).to_csv(run.results / "new.csv", index=False)
    report = _compare(run, ref)
    assert report.missing == ["length_curve.csv"] and report.extra == ["new.csv"] and report.verdict == "differs"
    short = _run(tmp_path / "out2", alignment=_alignment().iloc[:-1])
    assert _compare(short, ref).structure and _compare(short, ref).verdict == "differs"
    a = _alignment()
    a.loc[1, "ci_low"] = np.nan
    nan = _compare(_run(tmp_path / "out3", alignment=a), ref)
    assert nan.verdict == "differs" and nan.differences[0].column == "ci_low"


def test_many_near_ties_are_not_reproduced(tmp_path, ref):
    a = _alignment()
    a["score"] += STEP  # every score moved: a systematic shift, not a near-tie
    a["ci_low"] += STEP
    assert _compare(_run(tmp_path / "out", alignment=a), ref).verdict == "differs"


@pytest.mark.functional
def test_the_command_compares_and_exits_by_verdict(tmp_path, ref, capsys):
    _run(tmp_path / "out")
    assert R.main(["--run", "mine", "--outputs", str(tmp_path / "out"), "--reference", str(ref)]) == 0
    assert "verdict: reproduced" in capsys.readouterr().out
    a = _alignment()
    a.loc[0, "score"] += 0.05
    _run(tmp_path / "out", alignment=a)
    assert R.main(["--run", "mine", "--outputs", str(tmp_path / "out"), "--reference", str(ref)]) == 1
    capsys.readouterr()
    assert R.main(["--run", "mine", "--outputs", str(tmp_path / "out"), "--reference", str(tmp_path / "none")]) == 2
    assert "no reference tables in" in capsys.readouterr().err
    assert R.main(["--run", "nothing", "--outputs", str(tmp_path / "out"), "--reference", str(ref)]) == 2
    assert "no results folder" in capsys.readouterr().err


def test_a_whole_run_of_a_profile_ends_with_its_comparison(tmp_path, ref, capsys, monkeypatch):
    from helpers.run import runner

    _run(tmp_path / "out", "default")
    monkeypatch.setattr(R, "REFERENCE_ROOT", ref.parent)
    (ref.parent / "default").symlink_to(ref)
    runner._check_reference("default", tmp_path / "out")
    out = capsys.readouterr().out
    assert "compared with the reference" in out and out.rstrip().endswith("verdict: reproduced")
    runner._check_reference("tiny", tmp_path / "out")  # no reference/tiny: nothing printed
    assert capsys.readouterr().out == ""


def test_the_reference_keeps_the_readme_figures_of_the_run(tmp_path):
    run = _run(tmp_path / "out", "default")
    run.figures.mkdir(parents=True)
    (run.figures / "05_alignment_bars.png").write_bytes(b"\x89PNG bars")
    (run.figures / "06_layerwise.png").write_bytes(b"\x89PNG not a headline figure")
    R.write_reference(run.results, tmp_path / "reference", None, "default", run.figures)
    assert sorted(p.name for p in (tmp_path / "reference" / "figures").iterdir()) == ["05_alignment_bars.png"]
    assert (tmp_path / "reference" / "figures" / "05_alignment_bars.png").read_bytes() == b"\x89PNG bars"
    # the figures are not tables: a comparison ignores them
    assert R.compare_run(run.results, tmp_path / "reference").verdict == "reproduced"


def test_the_reference_renders_the_findings_of_the_run(tmp_path):
    from helpers.analyses import findings

    run = _run(tmp_path / "out", "default")
    rows = [
        findings.finding(
            "07",
            "SEE raises alignment with the vision encoder",
            "SEE − NONE · vis (vision) · generative",
            -0.03,
            expected=1,
            ci=(-0.05, -0.01),
            p=0.001,
            n=300,
            family="confirmatory",
        )
    ]
    findings.table(rows).to_csv(run.results / "findings_07.csv", index=False)
    R.write_reference(run.results, tmp_path / "reference", None, "default")
    text = (tmp_path / "reference" / "FINDINGS.md").read_text()
    assert text.startswith("# What the `default` run shows")
    assert "## 07 · Statistics" in text and "**contradicted**" in text and "-0.030 [-0.050, -0.010]" in text


def test_the_readme_claims_block_is_written_from_the_findings(tmp_path):
    from helpers.analyses import findings

    results = tmp_path / "results"
    results.mkdir()
    rows = [
        findings.finding(
            "05",
            "SEE raises alignment with the vision encoder",
            "SEE − NONE · vis (vision) · generative",
            0.04,
            expected=1,
            ci=(0.02, 0.06),
            p=1e-4,
            n=300,
            family="confirmatory",
        ),
        findings.finding(
            "05",
            "SEE beats HEAR against the vision encoder",
            "SEE − HEAR · vis (vision) · generative",
            0.01,
            expected=1,
            ci=(-0.01, 0.03),
            p=0.3,
            n=300,
        ),
    ]
    findings.table(rows, confirmatory=3).to_csv(results / "findings_05.csv", index=False)
    # 07 repeats 05's confirmatory test: counted once
    findings.table(rows[:1], confirmatory=3).assign(notebook="07").to_csv(results / "findings_07.csv", index=False)
    start, end = R.README_CLAIMS
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{start}\nold text\n{end}\n\nrest\n")
    assert R.write_readme_claims(readme, results)
    text = readme.read_text()
    assert "old text" not in text and text.startswith("# title") and text.endswith("rest\n")
    assert (
        "**Confirmatory** (1 tests" in text
        and "| SEE − NONE · vis (vision) · generative | +0.040 [+0.020, +0.060] | < 0.001 | < 0.001 | supports |"
        in text
    )
    assert "**SEE raises alignment with the vision encoder** — reproduced" in text
    assert (
        "- 05: SEE beats HEAR against the vision encoder — not shown: in the paper's direction, but inconclusive"
        in text
    )
    assert not R.write_readme_claims(tmp_path / "missing.md", results)
