"""RegionMatcher: one embedding call per batch, batch-invariant results, empty inputs, crops with masks."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pytest

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import ImageInput, RegionMatcher, label_image
from ovlabel.engine.matching.crops import crop_with_mask, image_with_mask
from ovlabel.engine.records import Match
from tests.engine.matching.helpers import (A, B, BIG, IN1, SIZE, TableEmbedder, box_mask, config, match_one,
                                           noise_image, noun, parse, setup_image)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def test_batch_embeds_once_and_equals_images_alone() -> None:
    emb = TableEmbedder()
    img0, masks0 = setup_image(emb, [A, B], [{"dog": 0.9}, {"cat": 0.9}], seed=0)
    img1, masks1 = setup_image(emb, [BIG, IN1], [{"car": 0.9}, {"wheel": 0.9}], scene={"street": 0.9}, seed=1)
    items = [ImageInput(img0, masks0, (parse(noun("dog"), noun("cat")),)),
             ImageInput(img1, masks1, (parse(noun("street", level="scene"), noun("car"),
                                              noun("wheel", level="part", parent=1)),))]
    matcher = RegionMatcher(emb, config(crop_mode="masked"))
    batch = matcher.label_batch(items)
    assert (emb.crop_calls, emb.label_calls) == (1, 1)  # whole images and regions in one stream; labels
    alone = [matcher.label_batch([item])[0] for item in items]
    assert batch == alone == matcher.label_batch(items)
    assert [[(s.level, s.label) for s in tree] for tree in batch] == [
        [("scene", "scene"), ("object", "dog"), ("object", "cat")],
        [("scene", "street"), ("object", "car"), ("part", "wheel")]]


def test_empty_inputs() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A], [{"dog": 0.9}])
    matcher = RegionMatcher(emb, config())
    assert matcher.match_batch([]) == []
    tree = matcher.label_batch([ImageInput(image, MaskBatch.empty(SIZE), (parse(noun("dog")),))])[0]
    assert [s.label for s in tree] == ["scene"]
    assert [s.label for s in label_image(emb, config(), image, masks, [])] == ["scene"]


def test_match_records_are_matches() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A], [{"dog": 0.9}])
    found = match_one(emb, image, masks, [parse(noun("dog"))])
    assert all(isinstance(m, Match) for m in found.matches)



class MaskTableEmbedder(TableEmbedder):
    """A TableEmbedder for a crop mode whose encoder takes the mask too: cosines set per (crop, mask) pair."""

    def __init__(self, crop_mode: str) -> None:
        super().__init__()
        self.crop_mode = crop_mode
        self.region_calls = 0

    def embed_regions(self, crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
        self.region_calls += 1
        return self.embed_crops(np.concatenate([crops, np.repeat(masks[..., None], 3, axis=-1)], axis=1))

    def set_region(self, pair: tuple[np.ndarray, np.ndarray], sims: Mapping[str, float]) -> None:
        crop, mask = pair
        self.set_crop(np.concatenate([crop, np.repeat(mask[..., None], 3, axis=-1)], axis=0), sims)


@pytest.mark.parametrize("mode", ["alpha", "mask_prompt"])
def test_mask_input_modes_embed_each_crop_with_its_mask_in_one_stream(mode: str) -> None:
    emb = MaskTableEmbedder(mode)
    cfg = config(crop_mode=mode, alpha_context=1.5)
    image = noise_image(4)
    masks = np.stack([box_mask(A), box_mask(B)])
    for mask, sims in zip(masks, [{"dog": 0.9}, {"cat": 0.9}]):
        emb.set_region(crop_with_mask(image, mask, mode, emb.crop_size, 1.5), sims)
    emb.set_region(image_with_mask(image, mode, emb.crop_size, 1.5), {"field": 0.9})
    tree = label_image(emb, cfg, image, MaskBatch.from_masks(masks),
                       [parse(noun("field", level="scene"), noun("dog"), noun("cat"))])
    assert [(s.level, s.label) for s in tree] == [("scene", "field"), ("object", "dog"), ("object", "cat")]
    assert (emb.region_calls, emb.crop_calls) == (1, 1)  # scene and regions: one embed_regions stream


def test_a_mask_input_mode_needs_an_embedder_built_for_it() -> None:
    image, masks = noise_image(5), MaskBatch.from_masks(np.stack([box_mask(A)]))
    with pytest.raises(ConfigError, match="crop_mode=alpha needs an embedder built for it.*TableEmbedder is built "
                                          "for plain crops"):
        label_image(TableEmbedder(), config(crop_mode="alpha"), image, masks, [parse(noun("dog"))])
    with pytest.raises(ConfigError, match="crop_mode=alpha needs an embedder built for it.*built for mask_prompt"):
        label_image(MaskTableEmbedder("mask_prompt"), config(crop_mode="alpha"), image, masks, [parse(noun("dog"))])


@pytest.mark.parametrize("mode", ["alpha", "mask_prompt"])
def test_mask_input_modes_label_through_the_tiny_clip(mode: str) -> None:
    from ovlabel.engine.config import ClipConfig
    from ovlabel.engine.matching import build_region_embedder

    embedder = build_region_embedder(ClipConfig(model="ovlabel-tiny-clip", pretrained=None, checkpoint="random"), mode)
    masks = MaskBatch.from_masks(np.stack([box_mask(BIG), box_mask(IN1), box_mask(B)]))
    parses = [parse(noun("field", level="scene"), noun("dog", plural=True), noun("ear", level="part", parent=1))]
    cfg = config(similarity_threshold=-1.0, probability_threshold=0.0, crop_mode=mode)
    tree = label_image(embedder, cfg, noise_image(3), masks, parses)
    assert tree[0].level == "scene" and len(tree) > 1 and all(0.0 <= s.score <= 1.0 for s in tree)
    assert embedder.work.crops == 4  # the scene and three regions
