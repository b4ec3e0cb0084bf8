"""The part level: containment, per-instance softmax, lexicon parts, part reach and grown objects."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine.matching import containment
from tests.engine.matching.helpers import (BIG, C, CROWN, IN1, IN2, TRUNK, TableEmbedder, box_mask, config,
                                           match_one, noun, parse, picked, setup_image)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def test_parts_may_be_smaller_than_objects() -> None:
    emb = TableEmbedder()
    tiny = (30, 30, 34, 34)  # 16 px: 0.4% of the image
    image, masks = setup_image(emb, [BIG, tiny, (2, 56, 6, 60)], [{"dog": 0.9}, {"tail": 0.9}, {"cat": 0.9}])
    caption = parse(noun("dog"), noun("cat"), noun("tail", level="part", parent=0))
    same = match_one(emb, image, masks, [caption], config(min_mask_area_fraction=0.01))
    assert len(same.masks) == 1 and [m.label for m in same.matches] == ["dog"]
    split = match_one(emb, image, masks, [caption], config(min_mask_area_fraction=0.01, min_part_area_fraction=0.001))
    assert len(split.masks) == 3
    assert [(m.label, m.mask_index) for m in split.matches] == [("dog", 0), ("tail", 1)]  # no tiny 'cat' object


def test_part_must_lie_inside_its_parent_and_be_smaller() -> None:
    emb = TableEmbedder()
    half_out = (44, 20, 60, 30)  # 6 of 16 columns inside BIG
    sims = [{"dog": 0.9, "tail": 0.99}, {"tail": 0.6}, {"tail": 0.95}, {"tail": 0.97}]
    image, masks = setup_image(emb, [BIG, IN1, C, half_out], sims)
    caption = parse(noun("dog"), noun("tail", level="part", parent=0))
    found = match_one(emb, image, masks, [caption])
    assert picked(found) == [0]
    parts = [m for m in found.matches if m.level == "part"]
    assert [(m.mask_index, m.label, m.source, m.parent_match) for m in parts] == [(1, "tail", "caption", 0)]
    assert found.matches[parts[0].parent_match].label == "dog"


def test_part_containment_threshold() -> None:
    emb = TableEmbedder()
    half_out = (44, 20, 60, 30)
    image, masks = setup_image(emb, [BIG, half_out], [{"dog": 0.9}, {"tail": 0.9}])
    caption = parse(noun("dog"), noun("tail", level="part", parent=0))
    assert picked(match_one(emb, image, masks, [caption]), "part") == []
    assert picked(match_one(emb, image, masks, [caption], config(part_containment=0.3)), "part") == [1]
    assert containment(masks, [1], [0])[0, 0] == pytest.approx(6 / 16)


def test_part_softmax_is_over_the_parents_parts_and_background() -> None:
    emb = TableEmbedder()
    sims = [{"dog": 0.9}, {"tail": 0.6, "head": 0.1}, {"head": 0.8}, {"tail": 0.3, "background": 0.5}]
    image, masks = setup_image(emb, [BIG, IN1, IN2, (20, 36, 28, 44)], sims)
    caption = parse(noun("dog"), noun("tail", level="part", parent=0), noun("head", level="part", parent=0))
    found = match_one(emb, image, masks, [caption])
    assert {m.label: m.mask_index for m in found.matches if m.level == "part"} == {"tail": 1, "head": 2}


def test_part_of_an_unmatched_parent_yields_nothing() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [BIG, IN1], [{"dog": 0.9}, {"tail": 0.9}])
    caption = parse(noun("dog"), noun("cat"), noun("tail", level="part", parent=1))
    found = match_one(emb, image, masks, [caption])
    assert picked(found) == [0] and picked(found, "part") == []


def test_each_instance_gets_its_own_parts_and_a_mask_one_part_label() -> None:
    emb = TableEmbedder()
    left, right = (0, 0, 30, 40), (34, 0, 64, 40)
    tail_l, tail_r, head_l = (2, 2, 10, 10), (40, 2, 48, 10), (14, 14, 24, 24)
    sims = [{"dog": 0.9}, {"dog": 0.8}, {"tail": 0.9, "head": 0.85}, {"tail": 0.7}, {"head": 0.6}]
    image, masks = setup_image(emb, [left, right, tail_l, tail_r, head_l], sims)
    caption = parse(noun("dog", count=2, plural=True), noun("tail", level="part", parent=0),
                    noun("head", level="part", parent=0))
    found = match_one(emb, image, masks, [caption])
    objects = {m.mask_index: k for k, m in enumerate(found.matches) if m.level == "object"}
    parts = {(m.label, m.mask_index, m.parent_match) for m in found.matches if m.level == "part"}
    assert parts == {("tail", 2, objects[0]), ("tail", 3, objects[1]), ("head", 4, objects[0])}


def test_lexicon_parts_are_marked_and_use_the_stricter_threshold() -> None:
    emb = TableEmbedder()
    sims = [{"dog": 0.9}, {"tail": 0.9}, {"ear": 0.9}, {"leg": 0.3}]
    image, masks = setup_image(emb, [BIG, IN1, IN2, (20, 36, 28, 44)], sims)
    parses = [parse(noun("dog"), noun("tail", level="part", parent=0))]
    off = match_one(emb, image, masks, parses)
    assert [(m.label, m.source) for m in off.matches if m.level == "part"] == [("tail", "caption")]
    strict = match_one(emb, image, masks, parses, config(lexicon_parts=True, lexicon_part_threshold=0.9))
    parts = {m.label: m for m in strict.matches if m.level == "part"}
    assert set(parts) == {"tail", "ear"}  # p(leg) ~ 0.87 < 0.9
    ear = parts["ear"]
    assert (ear.source, ear.mask_index, ear.noun, ear.caption_index) == ("lexicon", 2, None, None)
    assert parts["tail"].source == "caption"
    loose = match_one(emb, image, masks, parses, config(lexicon_parts=True, lexicon_part_threshold=0.5))
    assert picked(loose, "part") == [1, 2, 3]


def test_lexicon_never_relabels_a_caption_part() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [BIG, IN1], [{"dog": 0.9}, {"tail": 0.5, "ear": 0.95}])
    parses = [parse(noun("dog"), noun("tail", level="part", parent=0))]
    found = match_one(emb, image, masks, parses, config(lexicon_parts=True, probability_threshold=0.0,
                                                        similarity_threshold=0.0, lexicon_part_threshold=0.5))
    # the caption softmax (tail vs background) keeps mask 1 as tail; the lexicon cannot take it back
    assert [(m.label, m.source) for m in found.matches if m.level == "part"] == [("tail", "caption")]


def test_part_reach_takes_a_part_outside_and_grows_the_object() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [CROWN, TRUNK], [{"tree": 0.9, "crown": 0.9}, {"trunk": 0.9}])
    caption = parse(noun("tree"), noun("crown", level="part", parent=0), noun("trunk", level="part", parent=0))
    inside_only = match_one(emb, image, masks, [caption])
    assert [(m.label, m.mask_index) for m in inside_only.matches] == [("tree", 0)]
    found = match_one(emb, image, masks, [caption], config(part_reach=1.0))
    tree = found.matches[0]
    assert (tree.label, tree.mask_index, len(found.masks)) == ("tree", 2, 3)
    assert np.array_equal(found.masks.decode(2), box_mask(CROWN) | box_mask(TRUNK))
    assert found.masks.areas[2] == masks.areas[0] + masks.areas[1]
    parts = {m.label: (m.mask_index, m.parent_match) for m in found.matches if m.level == "part"}
    assert parts == {"crown": (0, 0), "trunk": (1, 0)}
    assert (containment(found.masks, [0, 1], [2]) == 1.0).all()  # every part lies inside its grown object


def test_an_object_that_did_not_grow_has_no_part_on_its_own_mask() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [CROWN], [{"tree": 0.9, "crown": 0.9}])
    caption = parse(noun("tree"), noun("crown", level="part", parent=0))
    found = match_one(emb, image, masks, [caption], config(part_reach=1.0))
    assert [(m.label, m.mask_index) for m in found.matches] == [("tree", 0)] and len(found.masks) == 1


def test_part_reach_needs_touch_the_widened_box_and_no_other_object() -> None:
    emb = TableEmbedder()
    apart = (22, 30, 28, 46)  # 6 rows below the crown: not touching
    dog, in_dog = (40, 4, 60, 24), (40, 10, 48, 20)  # the dog touches the crown's right side
    sims = [{"tree": 0.9}, {"trunk": 0.9}, {"dog": 0.9}, {"trunk": 0.95}]
    image, masks = setup_image(emb, [CROWN, apart, dog, in_dog], sims)
    caption = parse(noun("tree"), noun("dog"), noun("trunk", level="part", parent=0))
    assert picked(match_one(emb, image, masks, [caption], config(part_reach=1.0)), "part") == []
    near = match_one(emb, image, masks, [caption], config(part_reach=1.0, part_touch_px=7))
    assert picked(near, "part") == [1]  # within 7 px now; the piece of the dog never qualifies
    short = match_one(emb, image, masks, [caption], config(part_reach=0.1, part_touch_px=7))
    assert picked(short, "part") == []  # the box widened by 10% (2 rows) holds none of it

