"""Profiles, notebook hygiene and the papermill runner's failure reporting."""

from __future__ import annotations

import ast

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from helpers.run import runner


def test_profiles_layer_on_default():
    default = runner.load_profile("default")
    tiny = runner.load_profile("tiny", {"n_items": 12})
    assert default["run_name"] == "default" and tiny["run_name"] == "tiny"
    assert tiny["n_items"] == 12  # override wins
    assert tiny["llm"] == default["llm"]  # inherited
    assert tiny["max_new_tokens"] < default["max_new_tokens"]
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        runner.load_profile("nope")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("n_items=12", ("n_items", 12)),
        ("do_sample=true", ("do_sample", True)),
        ("stamps_dir=null", ("stamps_dir", None)),
        ("audio_encoders=[aisfx]", ("audio_encoders", ["aisfx"])),
        ("llm=Qwen/Qwen3-0.6B", ("llm", "Qwen/Qwen3-0.6B")),
    ],
)
def test_parse_override(text, expected):
    assert runner.parse_override(text) == expected


def test_parse_override_rejects_garbage():
    with pytest.raises(ValueError, match="key=value"):
        runner.parse_override("n_items")


NOTEBOOKS = runner.numbered_notebooks()


def test_the_five_stages_exist_in_order():
    numbers = [nb.name[:2] for nb in NOTEBOOKS]
    assert numbers[:5] == ["01", "02", "03", "04", "05"] and len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_hygiene(path):
    nb = nbformat.read(path, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assigned = {t.id for node in ast.parse(params[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert runner.notebook_parameters(path) == assigned, "papermill must parse every parameter line"
    assert "run_name" in assigned
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit notebooks without outputs"
        assert "sys.path" not in cell.source, "import helpers as an installed package, no path hacks"


@pytest.mark.parametrize("profile", runner.profile_names())
def test_every_profile_key_is_a_notebook_parameter(profile):
    declared = set().union(*(runner.notebook_parameters(nb) for nb in NOTEBOOKS))
    unknown = set(runner.load_profile(profile)) - declared
    assert not unknown, f"profile {profile} sets parameters no notebook declares: {unknown}"


@pytest.mark.functional
def test_failing_notebook_is_named_with_its_cell(tmp_path):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = new_code_cell("run_name = 'x'\nvalue = 1")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, new_code_cell("ok = value + 1"), new_code_cell("raise ValueError(f'bad value {value}')")]
    path = tmp_path / "07_boom.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(runner.NotebookFailed) as err:
        # k is declared by other notebooks, not by this one: it is passed over, not an error
        runner.run_notebooks({"run_name": "t", "value": 41, "k": 3}, [path], outputs=tmp_path / "out", log_output=False)
    msg = str(err.value)
    assert "07_boom.ipynb failed in cell" in msg and "ValueError: bad value 41" in msg
    assert (tmp_path / "out" / "notebooks" / "t" / "07_boom.ipynb").exists()
    assert runner.select(NOTEBOOKS, ["03", "05"]) == [NOTEBOOKS[2], NOTEBOOKS[4]]
    with pytest.raises(ValueError, match="matches none"):
        runner.select(NOTEBOOKS, ["99"])


# --- params file (the playground's saved templates) ---------------------------------


def test_params_file_applies_after_profile_and_before_param(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("k: 7\nn_items: 12\ncues:\n  SEE: 'See {caption}.'\n  MINE: 'Picture {caption}.'\n")
    params = runner.load_profile("tiny", {"n_items": 3}, params_file=path)
    assert params["k"] == 7  # overrides tiny.yaml's k
    assert params["n_items"] == 3  # --param wins over the file
    assert params["cues"] == {"SEE": "See {caption}.", "MINE": "Picture {caption}."}  # replaced as a whole
    assert params["run_name"] == "tiny" and params["max_new_tokens"] == runner.load_profile("tiny")["max_new_tokens"]


def test_params_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="params file .*missing.yaml not found"):
        runner.load_profile("tiny", params_file=tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        runner.load_profile("tiny", params_file=bad)
    bad.write_text("cues:\n  X: 'no slot here'\n")
    with pytest.raises(ValueError, match="cue 'X'.*caption"):
        runner.load_profile("tiny", params_file=bad)
    (tmp_path / "empty.yaml").write_text("")
    assert runner.load_profile("tiny", params_file=tmp_path / "empty.yaml") == runner.load_profile("tiny")


def test_main_reads_params_file(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_run(params, notebooks, outputs, log_output=True):
        seen.update(params=params, notebooks=[n.name for n in notebooks], outputs=outputs)
        return []

    monkeypatch.setattr(runner, "run_notebooks", fake_run)
    path = tmp_path / "p.yaml"
    path.write_text("cues:\n  MINE: 'Picture {caption}.'\nk: 4\n")
    rc = runner.main(["--profile", "tiny", "--params-file", str(path), "--param", "k=3", "--only", "02", "--quiet"])
    assert rc == 0
    assert seen["params"]["cues"] == {"MINE": "Picture {caption}."} and seen["params"]["k"] == 3
    assert seen["notebooks"] == ["02_generation.ipynb"]
    assert runner.main(["--params-file", str(tmp_path / "nope.yaml"), "--quiet"]) == 2
    assert "nope.yaml not found" in capsys.readouterr().err
