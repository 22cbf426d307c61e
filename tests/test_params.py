"""Run parameters: unknown names, None spellings, types and values, paths (helpers.run.params via the runner)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.core.paths import PROJECT_ROOT
from helpers.run import runner
from helpers.run.params import ParameterError, normalize_none, resolve_paths


@pytest.mark.parametrize("profile", runner.profile_names())
def test_every_shipped_profile_passes_the_checks(profile):
    params = runner.check_params(runner.load_profile(profile))
    assert params["run_name"]


def test_unknown_key_names_the_closest_declared_names():
    with pytest.raises(ParameterError, match=r"'n_item' \(did you mean 'n_items'") as err:
        runner.check_params(runner.load_profile("tiny", {"n_item": 5}))
    assert "ignored" in str(err.value)
    with pytest.raises(ParameterError, match="'zzzz_qqq' \\(no declared parameter is close"):
        runner.check_params(runner.load_profile("tiny", {"zzzz_qqq": 1}))


def test_params_file_typo_is_an_error(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("max_new_token: 16\n")
    with pytest.raises(ParameterError, match="'max_new_token' \\(did you mean 'max_new_tokens'"):
        runner.check_params(runner.load_profile("tiny", params_file=f))


@pytest.mark.parametrize("text", ["n_items=None", "n_items=none", "n_items=null", "n_items=~", "n_items="])
def test_every_spelling_of_none_is_none(text):
    key, value = runner.parse_override(text)
    assert (key, value) == ("n_items", None)
    assert runner.check_params(runner.load_profile("tiny", {key: value}))["n_items"] is None


def test_none_in_yaml_files_is_none(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("n_items: None\nshard: ~\nllm_dtype: null\n")
    params = runner.check_params(runner.load_profile("tiny", params_file=f))
    assert params["n_items"] is None and params["shard"] is None and params["llm_dtype"] is None
    assert normalize_none({"a": ["None", "x"], "b": "null"}) == {"a": [None, "x"], "b": None}


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("n_items", "all", "positive integer, or None"),
        ("n_items", 0, "positive integer, or None"),
        ("n_items", 12.0, "positive integer, or None"),
        ("k", 10.0, "positive integer"),
        ("k", 0, "positive integer"),
        ("k", True, "positive integer"),
        ("max_new_tokens", 0, "positive integer"),
        ("max_new_tokens", -5, "positive integer"),
        ("quantile", 0, r"\(0, 1\]"),
        ("quantile", 1.5, r"\(0, 1\]"),
        ("quantile", "high", r"\(0, 1\]"),
        ("gen_batch_size", 0, "positive integer, or 'auto'"),
        ("rep_batch_size", "autoo", "positive integer, or 'auto'"),
        ("enc_batch_size", 2.5, "positive integer, or 'auto'"),
        ("on_bad_item", "ignore", "'raise', 'skip'"),
        ("prefix_lengths", [8, 0], "positive integers"),
        ("do_sample", "yes", "true or false"),
        ("seed", -1, "integer >= 0"),
        ("llm", 3, "text like the default"),
        ("top_p", 0, r"\(0, 1\]"),
        ("temperature", 0, "> 0"),
        ("vision_encoders", "dinov2-base", "list of names"),
    ],
)
def test_wrong_types_and_values_name_the_parameter(key, value, expected):
    with pytest.raises(ParameterError, match=f"parameter {key}=") as err:
        runner.check_params(runner.load_profile("tiny", {key: value}))
    assert err.match(expected)


@pytest.mark.parametrize(
    "cues, expected",
    [
        ({"SEE": "Imagine seeing it."}, "found none"),
        ({"SEE": "{caption} and {caption}"}, "exactly once"),
        ({"SEE": "Imagine {thing}."}, "found \\['thing'\\]"),
        ({}, "non-empty mapping"),
        ({"SEE": 3}, "must be text"),
    ],
)
def test_cues_need_one_caption_field(cues, expected):
    with pytest.raises(ParameterError, match=expected):
        runner.check_params(runner.load_profile("tiny", {"cues": cues}))


def test_shard_must_lie_in_range():
    assert runner.check_params(runner.load_profile("tiny", {"shard": 1, "n_shards": 2}))["shard"] == 1
    with pytest.raises(ParameterError, match="0..1"):
        runner.check_params(runner.load_profile("tiny", {"shard": 2, "n_shards": 2}))


def test_relative_paths_resolve_against_the_callers_directory(tmp_path, monkeypatch):
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "captions.csv").write_text("caption\n")
    (tmp_path / "models" / "qwen").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    params = runner.check_params(
        runner.load_profile(
            "tiny",
            {
                "dataset_csv": "mydata/captions.csv",
                "dataset_dir": "../elsewhere",  # resolved even if absent: the error then shows the full path
                "llm": "models/qwen",  # a local model folder that exists: resolved
                "size_llms": ["models/qwen", "Qwen/Qwen3-0.6B", "gemma-3-270m"],  # hub id and registry name kept
                "encoder_options": {
                    "beats": {"checkpoint": "models/qwen"},
                    "dinov2-base": {"checkpoint": "facebook/dinov2-base"},
                },
            },
        )
    )
    assert params["dataset_csv"] == str(tmp_path / "mydata" / "captions.csv")
    assert params["dataset_dir"] == str(tmp_path.parent / "elsewhere")
    assert params["llm"] == str(tmp_path / "models" / "qwen")
    assert params["size_llms"] == [str(tmp_path / "models" / "qwen"), "Qwen/Qwen3-0.6B", "gemma-3-270m"]
    assert params["encoder_options"]["beats"]["checkpoint"] == str(tmp_path / "models" / "qwen")
    assert params["encoder_options"]["dinov2-base"]["checkpoint"] == "facebook/dinov2-base"
    # absolute paths and None are left alone
    assert resolve_paths({"dataset_dir": "/abs/x", "dataset_csv": None}, tmp_path) == {
        "dataset_dir": "/abs/x",
        "dataset_csv": None,
    }


def _runner(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "helpers.run.runner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.functional
def test_command_line_rejects_bad_params_before_any_notebook(tmp_path):
    out = tmp_path / "out"
    res = _runner("--profile", "tiny", "--param", "n_itmes=5", "--outputs", str(out), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "'n_itmes' (did you mean 'n_items'" in res.stderr
    res = _runner("--profile", "tiny", "--param", "k=2.5", "--outputs", str(out), cwd=tmp_path)
    assert res.returncode == 2 and "parameter k=2.5 (float): expected a positive integer" in res.stderr
    assert not (out / "notebooks").exists(), "no notebook may start on bad parameters"
    listed = _runner("--list-params", cwd=tmp_path)
    assert listed.returncode == 0 and "n_items = 300" in listed.stdout and "cues = {" in listed.stdout
