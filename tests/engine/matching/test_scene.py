"""The scene level: the root takes the best scene noun above the thresholds."""
from __future__ import annotations

import pytest

from tests.engine.matching.helpers import A, SIZE, TableEmbedder, config, match_one, noun, parse, setup_image

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def test_best_scene_noun_labels_the_root() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A], [{"dog": 0.9}], scene={"kitchen": 0.8, "room": 0.3})
    parses = [parse(noun("room", level="scene"), noun("dog")), parse(noun("kitchen", level="scene"))]
    root = match_one(emb, image, masks, parses).root
    assert (root.label, root.level, root.source, root.caption_index, root.parent_id) == ("kitchen", "scene", "caption", 1, None)
    assert root.clip_similarity == pytest.approx(0.8) and 0.9 < root.score <= 1.0
    assert root.area == SIZE[0] * SIZE[1]


def test_weak_scene_leaves_the_root_unlabelled() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A], [{"dog": 0.9}], scene={"kitchen": 0.05, "background": 0.0})
    parses = [parse(noun("kitchen", level="scene"), noun("dog"))]
    root = match_one(emb, image, masks, parses, config(scene_threshold=0.7, similarity_threshold=0.0)).root
    assert (root.label, root.source, root.caption_index) == ("scene", "image", None)
    labelled = match_one(emb, image, masks, parses, config(scene_threshold=0.5, similarity_threshold=0.0)).root
    assert labelled.label == "kitchen"
    assert match_one(emb, image, masks, [parse(noun("dog"))]).root.label == "scene"

