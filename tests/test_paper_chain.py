"""The paper face end to end: notebooks 01-11 under the paper-tiny profiles (the paper's code
paths, every ``auto`` kept) on tiny random-weight Qwen3/DINOv2/BEATs saved where the paper
profiles find real ones, a WiT copy in the PRH schema, and the real AudioCaps and Clotho
samples; then notebook 11 combining the three runs into the paper's (vision, audio) plane."""

from __future__ import annotations

import pandas as pd
import pytest
from paper_world import PROFILES, build_world, paper_tiny_params, world_env

from helpers.run import runner

pytestmark = pytest.mark.slow

TOO_SMALL_FOR_14 = "paper-tiny-clotho"
REFUSALS: dict[str, str] = {}
ENCODER = {
    "paper-tiny": ("dinov2-base", "vision"),
    "paper-tiny-audiocaps": ("beats", "audio"),
    "paper-tiny-clotho": ("beats", "audio"),
}


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("paper-world")
    world = build_world(root)
    outputs = root / "outputs"
    env = {**world_env(world), "PERCEIVE_CACHE": str(root / "cache")}
    with runner._environ(env):  # the runner's own scoped environment, inherited by the kernels
        for profile in PROFILES:
            params = runner.load_profile(profile, paper_tiny_params(profile, world, shared_data))
            notebooks = runner.numbered_notebooks()
            if (
                profile == TOO_SMALL_FOR_14
            ):  # 7 clips: a search half and a held-out half of more than k=3 cannot both exist
                notebooks = [p for p in notebooks if not p.name.startswith("14_")]
            runner.run_notebooks(params, notebooks, outputs=outputs, log_output=False)
            if profile == TOO_SMALL_FOR_14:
                with pytest.raises(runner.NotebookFailed) as refused:
                    runner.run_notebooks(
                        params, runner.select(runner.numbered_notebooks(), ["14"]), outputs=outputs, log_output=False
                    )
                REFUSALS[profile] = str(refused.value)
        combined = runner.load_profile("paper-tiny", {"run_name": "paper-tiny-figures", "cross_runs": list(PROFILES)})
        runner.run_notebooks(
            combined, runner.select(runner.numbered_notebooks(), ["11"]), outputs=outputs, log_output=False
        )
    return outputs


@pytest.mark.parametrize("profile", PROFILES)
def test_every_cue_and_representation_has_a_score(paper_runs, profile):
    params = runner.load_profile(profile)
    assert params["gen_batch_size"] == "auto" and params["llm_device"] == "auto"  # nothing resolved by hand
    table = pd.read_csv(paper_runs / "results" / profile / "alignment.csv")
    encoder, modality = ENCODER[profile]
    assert set(table["encoder"]) == {encoder} and set(table["modality"]) == {modality}
    assert set(table["cue"]) == {"SEE", "HEAR", "NONE"} and len(table) == 3 * 3
    assert table["score"].between(0, 1).all() and (table["k"] == params["k"]).all()
    size = pd.read_csv(paper_runs / "results" / profile / "model_size.csv")
    assert set(size["llm"]) == set(params["size_llms"])
    ablation = pd.read_csv(paper_runs / "results" / profile / "sensory_words.csv")
    # WiT has no sounds: HEAR's ablations are left out there, not crashed on
    assert set(ablation["cue"]) == ({"SEE"} if modality == "vision" else {"SEE", "HEAR"})


def test_items_and_skips_of_the_real_samples(paper_runs, shared_data):
    n = {p: len(pd.read_parquet(paper_runs / "runs" / p / "manifest.parquet")) for p in PROFILES}
    assert n == {"paper-tiny": 24, "paper-tiny-audiocaps": 13, "paper-tiny-clotho": 7}
    for p in PROFILES:
        skipped = pd.read_csv(paper_runs / "runs" / p / "skipped_items.csv")
        assert list(skipped.columns) == ["reason", "count", "examples"] and skipped["count"].sum() == 0
    gens = pd.read_parquet(paper_runs / "runs" / "paper-tiny-audiocaps" / "generations.parquet")
    # the two AudioCaps clips that share a caption both have all three generations
    assert gens.groupby("caption")["id"].nunique().max() == 2 and len(gens) == 3 * 13
    assert gens["prompt"].str.endswith("<think>\n\n</think>\n\n").all()  # enable_thinking: false, Qwen3 style


def test_the_paper_plane_combines_the_vision_and_audio_runs(paper_runs):
    results = paper_runs / "results" / "paper-tiny-figures"
    plane = pd.read_csv(results / "cross_plane.csv")
    assert len(plane) > 0 and plane[["vision_score", "audio_score"]].notna().all().all()
    assert plane[["vision_score", "audio_score"]].stack().between(0, 1).all()
    assert set(plane["cue"]) == {"SEE", "HEAR", "NONE"} and set(plane["vision_run"]) == {"paper-tiny"}
    assert set(plane["audio_run"]) == {"paper-tiny-audiocaps", "paper-tiny-clotho"}
    assert set(plane["llm"]) == {"Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B"}
    figures = list((paper_runs / "figures" / "paper-tiny-figures").glob("11_plane_*.png"))
    assert len(figures) == 2  # WiT x AudioCaps and WiT x Clotho


def test_the_cue_search_refuses_a_run_too_small_to_split_and_says_why(paper_runs):
    message = REFUSALS[TOO_SMALL_FOR_14]
    assert "a cue search needs more than k=3 items in each half: beats covers" in message
    assert "use more items (n_items), a smaller k, or leave notebook 14 out of this run" in message


def test_the_cue_search_runs_on_the_paper_faces_big_enough_for_it(paper_runs):
    for profile in ("paper-tiny", "paper-tiny-audiocaps"):
        search = pd.read_csv(paper_runs / "results" / profile / "cue_search.csv")
        held = pd.read_csv(paper_runs / "results" / profile / "cue_search_held_out.csv")
        assert len(search) >= 10 and set(held["encoder"]) == {ENCODER[profile][0]}
