"""helpers.metrics.pairing (the one per-item mutual k-NN over shared items) and helpers.core.settings (the analysis options)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from helpers.analyses import ablations, neighbours, tables
from helpers.core.settings import DEFAULT_SETTINGS, AlignmentSettings, LMSettings
from helpers.metrics.pairing import EncoderSpace, common_rows, encoder_spaces, usable
from helpers.run.runner import PROFILES_DIR


def _points_on_a_line(ids, positions):
    """1-D features: an item's neighbours are the items nearest on the line (no clamp needed)."""
    return ids, np.column_stack([np.asarray(positions, float), np.ones(len(positions))])


def test_the_encoder_side_is_the_shared_items_in_llm_order():
    llm_ids = ["a", "b", "c", "d", "e"]
    space = EncoderSpace.over(llm_ids, "enc", "audio", ["e", "x", "b", "d"], np.arange(8.0).reshape(4, 2), q=1.0)
    # "x" has no LLM vector; the shared items follow the LLM's order, with the encoder's rows of them
    assert space.ids == ["b", "d", "e"] and space.rows.tolist() == [1, 3, 4]
    np.testing.assert_array_equal(space.feats, [[4.0, 5.0], [6.0, 7.0], [0.0, 1.0]])
    assert space.n == 3 and space.fits(2) and not space.fits(3)
    with pytest.raises(ValueError, match=r"SEE × enc: only 3 shared items, need more than k=3"):
        space.require(3, "SEE")


def test_per_item_overlap_counts_shared_neighbours_by_hand():
    # LLM line: 0 1 2 10 11 12 (two clusters); encoder line swaps items c and d between the clusters
    ids = list("abcdef")
    _, llm = _points_on_a_line(ids, [0, 1, 2, 10, 11, 12])
    _, enc = _points_on_a_line(ids, [0, 1, 10, 2, 11, 12])
    space = EncoderSpace.over(ids, "enc", "vision", ids, enc, q=1.0)
    # cosine on (x, 1) orders items by their angle atan2(1, x); nearest by angle (k=1): a→b in both spaces,
    # f→e in both; c→b in the LLM but c→e (angles 5.7° vs 5.2°) in the encoder; d→e in the LLM, d→b in the encoder
    per_item = space.per_item(llm, k=1)
    assert per_item.shape == (6,)
    assert per_item[0] == 1.0 and per_item[5] == 1.0  # a and f keep their neighbour
    assert per_item[2] == 0.0 and per_item[3] == 0.0  # c and d changed sides
    assert space.chance(1) == pytest.approx(1 / 5)


def test_encoder_neighbourhoods_are_computed_once_per_k():
    ids = [f"i{j}" for j in range(12)]
    feats = np.random.default_rng(0).normal(size=(12, 4))
    space = EncoderSpace.over(ids, "enc", "vision", ids, feats, q=0.95)
    first = space.knn(3)
    assert space.knn(3) is first and space.knn(4) is not first


def test_usable_names_the_encoders_it_leaves_out():
    ids = [f"i{j}" for j in range(10)]
    feats = {"big": ("vision", ids, np.eye(10)), "small": ("audio", ids[:3], np.eye(3))}
    spaces = encoder_spaces(ids, feats, q=1.0)
    with pytest.warns(UserWarning, match="small shares only 3 items"):
        kept = usable(spaces, 5, "layerwise")
    assert [s.name for s in kept] == ["big"]


def test_common_rows_keep_the_first_arrays_order():
    shared, ra, rb = common_rows(["c", "a", "b"], ["b", "z", "c"])
    assert shared == ["c", "b"] and ra.tolist() == [0, 2] and rb.tolist() == [2, 0]


def test_table_ablation_and_playground_agree_on_one_item():
    """The three users of the pairing give the same per-item overlap for the same data."""
    rng = np.random.default_rng(1)
    ids = [f"i{j}" for j in range(25)]
    llm, other = rng.normal(size=(25, 6)), rng.normal(size=(25, 6))
    enc = llm[:20] + 0.5 * rng.normal(size=(20, 6))
    feats = {"v": ("vision", ids[:20], enc)}
    settings = AlignmentSettings(k=4)
    table = tables.alignment_table({"x": (ids, llm)}, feats, settings=settings)
    paired = ablations.paired_alignment({"x": (ids, llm), "o": (ids, other)}, {"x": "o"}, feats, settings=settings)
    assert paired["score"].iloc[0] == pytest.approx(table["score"].iloc[0])
    per_item = EncoderSpace.over(ids, "v", "vision", ids[:20], enc, q=0.95).per_item(llm, 4)
    nb = neighbours.neighbour_overlap(neighbours.item_neighbours("i7", (ids, llm), feats, settings=settings))
    assert nb["mutual_knn"].iloc[0] == pytest.approx(per_item[7])


def test_settings_defaults_are_the_default_profile():
    profile = yaml.safe_load((PROFILES_DIR / "default.yaml").read_text())
    for f in dataclasses.fields(AlignmentSettings):
        assert getattr(DEFAULT_SETTINGS, f.name) == profile[f.name], f.name
    for f in dataclasses.fields(LMSettings):
        assert getattr(LMSettings(), f.name) == profile[LMSettings.parameter(f.name)], f.name
    assert (
        AlignmentSettings.from_params(profile) == DEFAULT_SETTINGS and LMSettings.from_params(profile) == LMSettings()
    )


def test_settings_are_read_from_notebook_parameters_by_name():
    params = {"llm": "gemma-3-270m", "llm_device": "cuda", "llm_dtype": "bfloat16", "llm_revision": "main", "k": 5}
    params |= {"gen_batch_size": "auto", "run_name": "x", "include_embeddings": False}
    got = LMSettings.from_params(params)
    assert (got.llm, got.device, got.dtype, got.revision) == ("gemma-3-270m", "cuda", "bfloat16", "main")
    assert got.gen_batch_size == "auto" and got.include_embeddings is False and got.rep_batch_size == 16
    assert AlignmentSettings.from_params(params) == AlignmentSettings(k=5)
    with pytest.raises(ValueError, match="gen_batch_size must be a positive integer or 'auto'"):
        LMSettings(gen_batch_size=0)
    with pytest.raises(TypeError, match="include_embeddings must be True or False"):
        LMSettings(include_embeddings="yes")


@pytest.mark.parametrize(
    "bad, error",
    [
        (dict(k=0), ValueError),
        (dict(quantile=0.0), ValueError),
        (dict(quantile=1.5), ValueError),
        (dict(n_perm=2.5), TypeError),
        (dict(first_layer=-1), ValueError),
        (dict(seed=True), TypeError),
    ],
)
def test_bad_settings_are_refused(bad, error):
    with pytest.raises(error, match="AlignmentSettings"):
        AlignmentSettings(**bad)


def test_settings_replace_and_are_hashable():
    s = DEFAULT_SETTINGS.replace(k=5)
    assert s.k == 5 and DEFAULT_SETTINGS.k == 10 and hash(s) != hash(DEFAULT_SETTINGS)
