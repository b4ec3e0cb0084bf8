"""RegionMatcher: one embedding call per batch, batch-invariant results, empty inputs."""
from __future__ import annotations

import pytest

from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import ImageInput, RegionMatcher, label_image
from ovlabel.engine.records import Match
from tests.engine.matching.helpers import (A, B, BIG, IN1, SIZE, TableEmbedder, config, match_one, noun, parse,
                                           setup_image)

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

