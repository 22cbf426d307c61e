"""Fault injection: the promise is "a clear error or a counted skip, and nothing lost".

Each test breaks something a real run meets — repeated captions, damaged cache files,
a kill in the middle of generation or of the representation pass, two shard jobs
writing one cache, corrupt images and sounds — on the real pipeline (tiny random-weight
models, the real runner and notebooks), and checks that the result equals a clean run's.
The counts at the end of each test (faults injected, runs recovered, items lost) are the
numbers the README's "Under faults" section reports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import lm as L
from helpers.core.cache import Store, map_cached
from helpers.core.paths import PROJECT_ROOT
from helpers.encoders.embedded import Encoder, embed_cached

pytestmark = pytest.mark.functional

#: float32 agreement of a representation recomputed in another batch shape (summation order differs)
FLOAT_RTOL, FLOAT_ATOL = 1e-4, 1e-5
WORDS = ["hello world", "imagine a red apple", "see a cat", "a dog w1 w2", "look a sound", "w3 w4 w5 w6", "red red"]


def _no_eos(llm: L.LLM) -> L.LLM:
    """The tiny model with no EOS, so every generation has exactly max_new_tokens tokens."""
    from dataclasses import replace

    return replace(llm, eos_token_ids=())


def _prompts(llm, texts):
    return [L.format_prompt(llm, t) for t in texts]


# ------------------------------------------------------------------ repeated captions


@pytest.mark.parametrize(
    "layout",
    [
        [0, 0, 1, 2, 3],  # repeat first
        [0, 1, 2, 1, 3],  # repeat in the middle
        [0, 1, 2, 3, 3],  # repeat last
        [2, 2, 2, 2],  # all equal
        [4, 0, 4, 1, 4, 0],  # several repeats interleaved
    ],
    ids=["first", "middle", "last", "all-equal", "interleaved"],
)
def test_repeated_prompts_in_any_position(llms, tmp_path, layout):
    llm = _no_eos(llms["qwen3"])
    distinct = _prompts(llm, WORDS[:5])
    prompts = [distinct[i] for i in layout]
    got = L.generate_cached(llm, prompts, L.Decoding(max_new_tokens=4), batch_size=2, cache_root=tmp_path)
    # expected: each distinct prompt generated alone, then laid out by hand
    alone = {p: L.generate(llm, [p], 4, batch_size=1)[0]["gen_ids"] for p in set(prompts)}
    assert [g["prompt"] for g in got] == prompts
    assert [g["gen_ids"] for g in got] == [alone[p] for p in prompts]
    assert len(list((tmp_path / "generations").glob("*/*.json"))) == len(set(prompts)) + 1  # + config.json
    reps = L.represent_cached(llm, got, batch_size=2, cache_root=tmp_path)
    for i, j in [(a, b) for a in range(len(prompts)) for b in range(len(prompts)) if prompts[a] == prompts[b]]:
        np.testing.assert_array_equal(reps[i]["gen_mean"], reps[j]["gen_mean"])
    reps[0]["gen_mean"][:] = 7.0  # a caller editing one result does not edit its repeats
    assert all(not np.all(r["gen_mean"] == 7.0) for r in reps[1:])


def test_repeated_caption_in_the_real_audiocaps_sample(shared_data):
    """The sample's two clips with one caption: both items stay, with the same caption."""
    from helpers.data import datasets

    manifest, _ = datasets.build_manifest(
        "audiocaps",
        dataset_csv=shared_data / "audiocaps_sample" / "captions.csv",
        dataset_dir=shared_data / "audiocaps_sample" / "audio",
        on_bad_item="skip",
    )
    counts = manifest["caption"].value_counts()
    assert counts.max() == 2 and (counts == 2).sum() == 1
    assert manifest["id"].is_unique


# ------------------------------------------------------------------ damaged cache files


def _damage(path: Path, how: str) -> None:
    if how == "zero":
        path.write_bytes(b"")
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: max(1, len(data) // 2)])
    else:  # wrong format: another program's bytes under the right name
        path.write_bytes(b"\x89PNG\r\n\x1a\n not a cache file")


def _item_files(root: Path, namespace: str, suffix: str) -> list[Path]:
    return sorted(p for p in (root / namespace).glob(f"*/*{suffix}") if p.name != "config.json")


@pytest.mark.parametrize("how", ["zero", "truncated", "wrong-format"])
def test_damaged_generation_and_representation_files_are_recomputed(llms, tmp_path, how):
    llm = _no_eos(llms["qwen3"])
    prompts = _prompts(llm, WORDS)
    clean_root, root = tmp_path / "clean", tmp_path / "damaged"
    dec = L.Decoding(max_new_tokens=5)
    clean_g = L.generate_cached(llm, prompts, dec, batch_size=3, cache_root=clean_root)
    clean_r = L.represent_cached(llm, clean_g, prefix_lengths=[2], batch_size=3, cache_root=clean_root)
    L.represent_cached(
        llm,
        L.generate_cached(llm, prompts, dec, batch_size=3, cache_root=root),
        prefix_lengths=[2],
        batch_size=3,
        cache_root=root,
    )

    faults = 0
    for namespace, suffix in (("generations", ".json"), ("representations", ".npz")):
        files = _item_files(root, namespace, suffix)
        for victim in (files[0], files[-1]):
            _damage(victim, how)
            faults += 1
    with pytest.warns(RuntimeWarning, match="is unreadable") as caught:
        gens = L.generate_cached(llm, prompts, dec, batch_size=3, cache_root=root)
        reps = L.represent_cached(llm, gens, prefix_lengths=[2], batch_size=3, cache_root=root)
    ours = [str(w.message) for w in caught if "is unreadable" in str(w.message)]
    named = " ".join(ours)
    for namespace, suffix in (("generations", ".json"), ("representations", ".npz")):
        moved = sorted((root / namespace).glob(f"*/*{suffix}.corrupt-1"))
        assert len(moved) == 2, namespace
        for m in moved:  # the warning names the damaged file; it is kept aside, not deleted
            assert m.name.removesuffix(".corrupt-1") in named
    assert faults == 4 and len(ours) == 4, ours
    assert [g["gen_ids"] for g in gens] == [g["gen_ids"] for g in clean_g]  # tokens: bit for bit
    for a, b in zip(reps, clean_r):  # floats: recomputed items sit in smaller batches (other padded shapes)
        for key in ("gen_mean", "prompt_mean", "prompt_last", "prefix_means"):
            np.testing.assert_allclose(a[key], b[key], rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
    # a third run finds every file whole: nothing more is moved or recomputed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.generate_cached(llm, prompts, dec, batch_size=3, cache_root=root)


def test_store_get_names_a_damaged_file(tmp_path):
    from helpers.core.cache import CorruptCacheFile

    store = Store(tmp_path, "x", {"a": 1}, kind="npz")
    store.put("item", {"v": np.arange(3)})
    _damage(store.path("item"), "truncated")
    with pytest.raises(CorruptCacheFile, match=str(store.path("item"))):
        store.get("item")
    with pytest.warns(RuntimeWarning, match="item.npz"):
        assert store.load("item") is None
    assert not store.path("item").exists() and store.path("item").with_name("item.npz.corrupt-1").exists()


def test_map_cached_refuses_batch_size_zero(tmp_path):
    store = Store(tmp_path, "x", {}, kind="json")
    for bad in (0, -2, 1.5, None):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            map_cached(store, ["a"], [1], lambda b: b, batch_size=bad)
    assert not store.keys(), "nothing may be computed or written"


class _SumEncoder(Encoder):
    """A deterministic 'encoder' (byte statistics of the file) for exercising the feature cache."""

    name, modality, dim = "test-bytes", "vision", 4

    @property
    def fingerprint(self):
        return {"encoder": self.name, "version": 1}

    def _embed_batch(self, paths):
        out = []
        for p in paths:
            b = np.frombuffer(Path(p).read_bytes(), dtype=np.uint8).astype(np.float64)
            out.append([b.size, b.mean(), b.std(), b.max()])
        return np.asarray(out, dtype=np.float32)


@pytest.mark.parametrize("how", ["zero", "truncated", "wrong-format"])
def test_damaged_encoder_feature_files_are_recomputed(tmp_path, how):
    files = []
    for i in range(5):
        f = tmp_path / f"img{i}.bin"
        f.write_bytes(bytes(range(i, 200 + 10 * i)))
        files.append(f)
    root = tmp_path / "cache"
    clean = embed_cached(_SumEncoder(), files, batch_size=2, cache_root=root)
    victims = _item_files(root, "embeddings/test-bytes", ".npz")[:2]
    for v in victims:
        _damage(v, how)
    enc = _SumEncoder()
    with pytest.warns(RuntimeWarning, match="is unreadable"):
        again = embed_cached(enc, files, batch_size=2, cache_root=root)
    assert enc.items_encoded == 2  # only the two damaged items ran again
    np.testing.assert_array_equal(again, clean)


def test_cache_keys_change_with_library_versions_and_device(llms, tmp_path, monkeypatch):
    from helpers.core import runtime

    llm = _no_eos(llms["qwen3"])
    prompts = _prompts(llm, WORDS[:2])
    L.generate_cached(llm, prompts, L.Decoding(max_new_tokens=3), cache_root=tmp_path)
    real = runtime.package_versions
    monkeypatch.setattr(runtime, "package_versions", lambda pkgs: {**real(pkgs), "torch": "0.0.0-other"})
    L.generate_cached(llm, prompts, L.Decoding(max_new_tokens=3), cache_root=tmp_path)
    configs = [json.loads(p.read_text()) for p in (tmp_path / "generations").glob("*/config.json")]
    assert sorted(c["runtime"]["versions"]["torch"] for c in configs) == sorted(
        [real(["torch"])["torch"], "0.0.0-other"]
    )
    assert {c["runtime"]["device"] for c in configs} == {"cpu"}
    assert (
        runtime.device_class(["cuda:0", "cuda:1"]) == "cuda" and runtime.device_class(["cpu", "cuda:0"]) == "cpu+cuda"
    )


@pytest.mark.slow
def test_damaged_converted_model_is_converted_again(tmp_path):
    """The embedded SmolLM2 GGUF converted once; its weights file truncated; the next load warns,
    moves the folder aside, converts again and gives the same generation."""
    models = tmp_path / "models"
    first = L.load_llm("smollm2-135m-instruct", models_dir=models)
    prompt = L.format_prompt(first, "Imagine: a red ball.")
    want = L.generate(first, [prompt], 6)[0]["gen_ids"]
    (folder,) = [p for p in models.iterdir() if p.is_dir() and not p.name.startswith(".")]
    weights = next(folder.glob("*.safetensors"))
    _damage(weights, "truncated")
    with pytest.warns(RuntimeWarning, match="is unreadable"):
        again = L.load_llm("smollm2-135m-instruct", models_dir=models)
    assert folder.with_name(folder.name + ".corrupt-1").is_dir() and (folder / "config.json").is_file()
    assert L.generate(again, [prompt], 6)[0]["gen_ids"] == want


# ------------------------------------------------------------------ two writers, one cache


_WRITER = textwrap.dedent(
    """
    import json, sys
    from helpers import lm as L
    model_dir, root, out = sys.argv[1:4]
    llm = L.load_llm(model_dir)
    prompts = [L.format_prompt(llm, f"imagine a red apple w{i}") for i in range(24)]
    gens = L.generate_cached(llm, prompts, L.Decoding(max_new_tokens=6), batch_size=2, cache_root=root)
    reps = L.represent_cached(llm, gens, batch_size=2, cache_root=root)
    json.dump({"gen_ids": [g["gen_ids"] for g in gens],
               "gen_mean": [r["gen_mean"].tolist() for r in reps]}, open(out, "w"))
    """
)


def test_two_processes_writing_one_cache(model_dirs, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    root = tmp_path / "shared-cache"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(model_dirs["qwen3"]), str(root), str(tmp_path / f"out{i}.json")],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    a, b = (json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(2))
    assert a["gen_ids"] == b["gen_ids"]  # greedy tokens: bit for bit
    # Each process reads what the other already wrote and computes the rest, so the batches it
    # pads differ between the two; representations agree to float32 rounding, not bit for bit.
    np.testing.assert_allclose(np.array(a["gen_mean"]), np.array(b["gen_mean"]), rtol=0, atol=1e-5)
    # every file whole, no temporary file left behind
    for namespace, kind in (("generations", "json"), ("representations", "npz")):
        (folder,) = [d for d in (root / namespace).iterdir() if d.is_dir()]
        store = Store(root, namespace, json.loads((folder / "config.json").read_text()), kind=kind)
        assert store.dir == folder and len(store.keys()) == 24
        for key in store.keys():
            store.get(key)  # raises CorruptCacheFile on a damaged file
        assert not list(folder.glob(".*")), "temporary files left behind"


# ------------------------------------------------------------------ corrupt images and sounds


def _byo(tmp_path: Path, shared_data: Path) -> Path:
    """A bring-your-own CSV of real sounds and images, three of them broken in different ways."""
    from PIL import Image

    d = tmp_path / "byo"
    d.mkdir()
    clips = sorted((shared_data / "clotho_sample" / "audio").glob("*.wav"))[:3]
    rows = []
    for i, clip in enumerate(clips):
        img = d / f"good{i}.png"
        Image.new("RGB", (40, 30), (40 * i, 90, 200)).save(img)
        rows.append(
            {"id": f"good{i}", "caption": f"a sound number {i}", "image_path": img.name, "audio_path": str(clip)}
        )
    jpg = d / "cut.jpg"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(jpg, quality=95)
    jpg.write_bytes(jpg.read_bytes()[:300])  # truncated JPEG
    (d / "empty.wav").write_bytes(b"")  # zero-byte sound
    (d / "notes.wav").write_text("these are my notes, not a sound\n")  # wrong format
    rows += [
        {"id": "bad-image", "caption": "a green square", "image_path": "cut.jpg", "audio_path": ""},
        {"id": "bad-empty", "caption": "a silent room", "image_path": "", "audio_path": "empty.wav"},
        {"id": "bad-format", "caption": "a typed note", "image_path": "", "audio_path": "notes.wav"},
    ]
    csv = d / "captions.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def test_a_clip_cropped_to_nothing_is_named(tmp_path):
    """A crop shorter than one output sample gives a ValueError naming the file (it once raised NameError)."""
    import soundfile as sf

    from helpers.data import media

    wav = tmp_path / "click.wav"
    sf.write(wav, np.full(480, 0.1, dtype=np.float32), 48000)
    with pytest.raises(ValueError, match="click.wav' is shorter than one sample at 16000 Hz"):
        media.load_audio(wav, 16000, max_seconds=1e-5)


def test_corrupt_media_are_caught_by_the_loaders_check(tmp_path, shared_data):
    from helpers.data import datasets, manifest as mf, media

    csv = _byo(tmp_path, shared_data)
    d = csv.parent
    assert "truncated" in media.image_problem(d / "cut.jpg").lower()
    assert "empty (0 bytes)" in media.audio_problem(d / "empty.wav")
    assert "Cannot read audio" in media.audio_problem(d / "notes.wav")
    assert media.audio_problem(sorted((shared_data / "clotho_sample" / "audio").glob("*.wav"))[0]) is None
    # MP3s soundfile cannot open still pass when the loader's librosa fallback reads them
    mp3 = sorted((shared_data / "freesound_sss" / "audio").glob("*.mp3"))[0]
    assert media.audio_problem(mp3) is None and media.load_audio(mp3, 16000, 1.0).size > 0
    manifest, report = datasets.build_manifest("byo", dataset_csv=csv, on_bad_item="skip")
    assert sorted(manifest["id"]) == ["good0", "good1", "good2"]
    assert report.total == 3
    with pytest.raises(mf.ManifestError, match="cut.jpg") as err:
        datasets.build_manifest("byo", dataset_csv=csv, on_bad_item="raise")
    assert "bad-image" in str(err.value) and "on_bad_item='skip'" in str(err.value)
    # validate_manifest (notebook 01's second check) decodes every file too
    hand = manifest.copy()
    hand.loc[0, "image_path"] = str(d / "cut.jpg")
    with pytest.raises(mf.ManifestError, match=r"item 'good0': unreadable image: .*cut\.jpg.*Re-save it"):
        mf.validate_manifest(hand)


@pytest.mark.slow
def test_notebook_01_raises_or_counts_corrupt_media(tmp_path, shared_data):
    from helpers.run import runner

    csv = _byo(tmp_path, shared_data)
    params = runner.load_profile(
        "tiny",
        {"dataset": "byo", "dataset_csv": str(csv), "n_items": None, "run_name": "faults", "on_bad_item": "raise"},
    )
    nb01 = runner.select(runner.numbered_notebooks(), ["01"])
    with pytest.raises(runner.NotebookFailed, match="01_data_prep.ipynb failed") as err:
        runner.run_notebooks(params, nb01, outputs=tmp_path / "out", log_output=False)
    assert "ManifestError" in str(err.value) and "cut.jpg" in str(err.value)
    runner.run_notebooks({**params, "on_bad_item": "skip"}, nb01, outputs=tmp_path / "out", log_output=False)
    run = tmp_path / "out" / "runs" / "faults"
    skipped = pd.read_csv(run / "skipped_items.csv")
    assert skipped["count"].sum() == 3
    assert dict(zip(skipped["reason"], skipped["count"])) == {"unreadable audio": 2, "unreadable image": 1}
    manifest = pd.read_parquet(run / "manifest.parquet")
    assert sorted(manifest["id"]) == ["good0", "good1", "good2"]


# ------------------------------------------------------------------ kills


def _run_dirs(base: Path) -> dict[str, Path]:
    return {"outputs": base / "outputs", "cache": base / "cache"}


_KILL_PARAMS = [
    "--profile",
    "tiny",
    "--param",
    "n_items=12",
    "--param",
    "max_new_tokens=8",
    "--param",
    "gen_batch_size=4",
    "--param",
    "rep_batch_size=4",
    "--param",
    "run_name=kill",
    "--only",
    "01",
    "02",
    "03",
    "--quiet",
]


def _start(base: Path) -> subprocess.Popen:
    dirs = _run_dirs(base)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PERCEIVE_CACHE": str(dirs["cache"])}
    model = _converted_model()
    link = dirs["cache"] / "models" / model.name
    if not link.exists():  # share the converted model, not its cached results
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(model, target_is_directory=True)
    return subprocess.Popen(
        [sys.executable, "-m", "helpers.run.runner", *_KILL_PARAMS, "--outputs", str(dirs["outputs"])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # its own process group: the kernels die with it


def _converted_model() -> Path:
    """The embedded model converted in the project's cache (once, on first use)."""
    return Path(L.load_llm("smollm2-135m-instruct").model.name_or_path)


def _finish(base: Path) -> None:
    proc = _start(base)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]


def _kill_when(base: Path, namespace: str, at_least: int, total: int) -> int:
    """Start a run, SIGKILL its whole process group once ``at_least`` items of ``namespace`` are cached."""
    proc = _start(base)
    folder = base / "cache" / namespace
    deadline = time.monotonic() + 900
    n = 0
    while time.monotonic() < deadline:
        n = sum(1 for p in folder.glob("*/*") if p.name != "config.json" and not p.name.startswith("."))
        if n >= at_least or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before the kill ({proc.stderr.read()[-2000:]})"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert n < total, f"killed too late: {n} of {total} {namespace} already cached"
    return n


def _results(base: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    run = base / "outputs" / "runs" / "kill"
    gens = pd.read_parquet(run / "generations.parquet")
    with np.load(run / "representations.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return gens, arrays


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("reference")
    _finish(base)
    return _results(base)


def _assert_same(got, want):
    gens, arrays = got
    ref_gens, ref_arrays = want
    pd.testing.assert_frame_equal(
        gens.drop(columns=[c for c in gens if c.startswith("seconds")], errors="ignore"),
        ref_gens.drop(columns=[c for c in ref_gens if c.startswith("seconds")], errors="ignore"),
    )
    assert arrays.keys() == ref_arrays.keys()
    for k in arrays:  # the texts and tokens above are bit for bit; floats to float32 rounding
        if np.issubdtype(arrays[k].dtype, np.floating):
            np.testing.assert_allclose(arrays[k], ref_arrays[k], rtol=FLOAT_RTOL, atol=FLOAT_ATOL, err_msg=k)
        else:  # item ids, token counts
            np.testing.assert_array_equal(arrays[k], ref_arrays[k], err_msg=k)


@pytest.mark.slow
def test_kill_during_generation_then_resume(tmp_path, reference_run):
    total = 3 * 12
    cached_at_kill = _kill_when(tmp_path, "generations", at_least=8, total=total)
    left = [p for p in (tmp_path / "cache" / "generations").glob("*/*.json") if p.name != "config.json"]
    for p in left:  # whatever was on disk at the kill is whole
        json.loads(p.read_text())
    _finish(tmp_path)
    _assert_same(_results(tmp_path), reference_run)
    assert 8 <= cached_at_kill < total


@pytest.mark.slow
def test_kill_during_representations_then_resume(tmp_path, reference_run):
    total = 3 * 12
    _kill_when(tmp_path, "representations", at_least=4, total=total)
    for p in (tmp_path / "cache" / "representations").glob("*/*.npz"):
        assert np.load(p).files  # whole
    _finish(tmp_path)
    _assert_same(_results(tmp_path), reference_run)
