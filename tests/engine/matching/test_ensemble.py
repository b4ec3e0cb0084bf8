"""Ensembles of region models: joined rows give the weighted mean of the members' cosines, the matcher decides on
that mean, members are built from their own weights in their own crop mode, and errors name the member."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ovlabel.engine.config import ClipConfig, EnsembleMember
from ovlabel.engine.errors import ConfigError, ModelWeightsError
from ovlabel.engine.matching import ImageInput, RegionMatcher, build_region_embedder
from ovlabel.engine.matching.ensemble import EnsembleEmbedder, Member, combine, members_of
from ovlabel.engine.masks.data import MaskBatch
from tests.engine.matching.helpers import A, B, TableEmbedder, box_mask, config, noun, parse, picked, setup_image

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def _unit_rows(seed: int, n: int, dim: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_joined_rows_are_unit_and_their_dot_products_the_weighted_mean_cosine() -> None:
    regions = [_unit_rows(0, 5, 8), _unit_rows(1, 5, 12), _unit_rows(2, 5, 4)]
    labels = [_unit_rows(3, 3, 8), _unit_rows(4, 3, 12), _unit_rows(5, 3, 4)]
    weights = [0.5, 0.3, 0.2]
    joined_r, joined_l = combine(regions, weights), combine(labels, weights)
    assert joined_r.shape == (5, 24)
    np.testing.assert_allclose(np.linalg.norm(joined_r, axis=1), 1.0, atol=1e-6)
    expected = sum(w * r @ t.T for w, r, t in zip(weights, regions, labels))
    np.testing.assert_allclose(joined_r @ joined_l.T, expected, atol=1e-6)
    with pytest.raises(ValueError, match="2 members' rows for 3 weights"):
        combine(regions[:2], weights)


def test_the_matcher_decides_on_the_weighted_mean() -> None:
    """A region the first model calls background (dog 0.3, background 0.6) and the second a dog (0.9 / 0.1): alone
    the first labels nothing; at weight 0.5 each the mean (dog 0.6, background 0.35) is a dog."""
    first, second = TableEmbedder(), TableEmbedder()
    image, masks = setup_image(first, [A, B], [{"dog": 0.3, "background": 0.6}, {"background": 0.9}])
    setup_image(second, [A, B], [{"dog": 0.9, "background": 0.1}, {"background": 0.9}])
    items = [ImageInput(image, masks, (parse(noun("dog")),))]
    cfg = config(crop_mode="masked")
    alone = RegionMatcher(first, cfg).match_batch(items)[0]
    ensemble = EnsembleEmbedder([Member(first, "masked", 0.5), Member(second, "masked", 0.5)])
    together = RegionMatcher(ensemble, cfg).match_batch(items)[0]
    assert picked(alone) == [] and picked(together, label="dog") == [0]
    assert (first.crop_calls, second.crop_calls) == (2, 1)  # one stream per model and batch (first: alone, then here)


def test_an_ensemble_checks_its_members() -> None:
    one = Member(TableEmbedder(), "masked", 1.0)
    with pytest.raises(ConfigError, match="at least two members"):
        EnsembleEmbedder([one])
    with pytest.raises(ConfigError, match="sum to 1"):
        EnsembleEmbedder([Member(TableEmbedder(), "masked", 0.5), Member(TableEmbedder(), "alpha", 0.6)])
    ensemble = EnsembleEmbedder([Member(TableEmbedder(), "alpha", 0.5), Member(TableEmbedder(), "masked", 0.5)])
    with pytest.raises(ConfigError, match="built for crop_mode alpha"):
        members_of(ensemble, "masked")
    assert members_of(one.embedder, "box") == (Member(one.embedder, "box", 1.0),)


# --- built from the config, on the demo's tiny architecture ---------------------------------------------------

def _tiny(**changes: object) -> ClipConfig:
    base: dict[str, object] = {"model": "ovlabel-tiny-clip", "pretrained": None, "checkpoint": "random:1",
                               "crops_per_batch": 4, "templates": ("a {}.",)}
    return ClipConfig(**{**base, **changes})


def test_members_are_built_from_their_own_weights_in_their_own_crop_mode() -> None:
    cfg = _tiny(ensemble=[EnsembleMember(crop_mode="masked", weight=0.25, checkpoint="random:2", flip_average=True)])
    ensemble = build_region_embedder(cfg, "alpha")
    assert isinstance(ensemble, EnsembleEmbedder)
    (first, w1), (second, w2) = [(m.embedder, m.weight) for m in ensemble.members]
    assert (w1, w2) == (0.75, 0.25) and [m.crop_mode for m in ensemble.members] == ["alpha", "masked"]
    assert getattr(first, "crop_mode") == "alpha" and not hasattr(second, "crop_mode")
    assert (first.cfg.flip_average, second.cfg.flip_average) == (False, True)
    labels = ["dog", "tree", "background"]
    alone = [build_region_embedder(_tiny(), "alpha"), build_region_embedder(cfg.member(0), "masked")]
    np.testing.assert_allclose(ensemble.embed_labels(labels),
                               combine([e.embed_labels(labels) for e in alone], [0.75, 0.25]), atol=1e-6)
    assert [d["crop_mode"] for d in ensemble.describe()["ensemble"]] == ["alpha", "masked"]  # type: ignore[index]


def test_the_matcher_joins_each_members_own_region_embeddings() -> None:
    cfg = _tiny(ensemble=[EnsembleMember(crop_mode="masked", weight=0.4, checkpoint="random:2")])
    image = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    masks = MaskBatch.from_masks(np.stack([box_mask(A), box_mask(B)]))
    items, kept = [ImageInput(image, masks, (parse(noun("dog")),))], [masks]
    match = config(crop_mode="alpha")
    scenes, regions = RegionMatcher(build_region_embedder(cfg, "alpha"), match)._embed_regions(items, kept)
    first = RegionMatcher(build_region_embedder(_tiny(), "alpha"), match)._embed_regions(items, kept)
    second = RegionMatcher(build_region_embedder(cfg.member(0), "masked"),
                           config(crop_mode="masked"))._embed_regions(items, kept)
    np.testing.assert_allclose(scenes, combine([first[0], second[0]], [0.6, 0.4]), atol=1e-6)
    np.testing.assert_allclose(regions[0], combine([first[1][0], second[1][0]], [0.6, 0.4]), atol=1e-6)


def test_a_members_error_names_the_member(tmp_path: Path) -> None:
    missing = tmp_path / "member.safetensors"
    cfg = _tiny(ensemble=[EnsembleMember(crop_mode="masked", weight=0.5, checkpoint=str(missing))])
    with pytest.raises(ModelWeightsError, match=r"^clip\.ensemble\[0\] \(crop_mode masked\): .*member\.safetensors"):
        build_region_embedder(cfg, "alpha")
