"""Region-noun matching with controlled similarities.

:class:`TableEmbedder` looks each crop up by its exact pixels: a test computes the crop of every
mask with :func:`crop_region` (noise images make every mask's crop unique) and sets that mask's
cosine to each label; label embeddings are one-hot, so ``region @ label`` is exactly that cosine.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
import pytest

from ovlabel.engine import clip as clip_module
from ovlabel.engine.config import ClipConfig, MatchingConfig
from ovlabel.engine.shipped import config_path
from ovlabel.engine.crops import crop_image, crop_region
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import (ImageInput, RegionMatcher, containment, dilate, label_image,
                                     nouns_at_level, synonym_groups, widened_box)
from ovlabel.engine.records import CaptionParse, ImageMatches, Match, Noun

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
SIZE = (64, 64)
LEXICON = {"dog": ("ear", "leg", "tail")}


class TableEmbedder:
    """A RegionEmbedder whose cosines are set per crop and label; counts its calls."""

    def __init__(self, crop_size: int = 16, logit_scale: float = 10.0, dim: int = 64) -> None:
        self.crop_size = crop_size
        self.logit_scale = logit_scale
        self.dim = dim
        self._axes: dict[str, int] = {}
        self._crops: dict[bytes, np.ndarray] = {}
        self.crop_calls = 0
        self.label_calls = 0

    def axis(self, label: str) -> int:
        if label not in self._axes:
            self._axes[label] = len(self._axes)
        return self._axes[label]

    def set_crop(self, crop: np.ndarray, sims: Mapping[str, float]) -> None:
        vec = np.zeros(self.dim, np.float32)
        for label, value in sims.items():
            vec[self.axis(label)] = value
        self._crops[crop.tobytes()] = vec

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        self.crop_calls += 1
        missing = [k for k, c in enumerate(crops) if c.tobytes() not in self._crops]
        assert not missing, f"crops {missing} were never registered"
        return np.stack([self._crops[c.tobytes()] for c in crops])

    def embed_labels(self, labels: Sequence[str]) -> np.ndarray:
        self.label_calls += 1
        out = np.zeros((len(labels), self.dim), np.float32)
        for k, label in enumerate(labels):
            out[k, self.axis(label)] = 1.0
        return out

    def describe(self) -> dict[str, object]:
        return {"model": "table"}


def noise_image(seed: int = 0, size: tuple[int, int] = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def box_mask(box: Box, size: tuple[int, int] = SIZE) -> np.ndarray:
    mask = np.zeros(size, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def setup_image(embedder: TableEmbedder, boxes: Sequence[Box], sims: Sequence[Mapping[str, float]],
                scene: Optional[Mapping[str, float]] = None, seed: int = 0,
                mode: str = "masked") -> tuple[np.ndarray, MaskBatch]:
    """A noise image, its box masks, and the embedder taught each mask's (and the image's) cosines."""
    image = noise_image(seed)
    masks = np.stack([box_mask(b) for b in boxes])
    for mask, table in zip(masks, sims):
        embedder.set_crop(crop_region(image, mask, mode, embedder.crop_size), table)
    embedder.set_crop(crop_image(image, embedder.crop_size), scene or {})
    return image, MaskBatch.from_masks(masks)


def noun(lemma: str, level: str = "object", parent: Optional[int] = None, count: Optional[int] = None,
         plural: bool = False, phrase: Optional[str] = None) -> Noun:
    return Noun(phrase=phrase or lemma, lemma=lemma, level=level, char_span=(0, len(phrase or lemma)),
                parent=parent, count=count, plural=plural)


def parse(*nouns: Noun) -> CaptionParse:
    return CaptionParse(" ".join(n.phrase for n in nouns), tuple(nouns))


def config(**changes: object) -> MatchingConfig:
    base: dict[str, object] = {"similarity_threshold": 0.1, "probability_threshold": 0.3,
                               "background_labels": ("background",), "min_mask_area_fraction": 0.0}
    return MatchingConfig(**{**base, **changes})


def match_one(embedder: TableEmbedder, image: np.ndarray, masks: MaskBatch, parses: Iterable[CaptionParse],
              cfg: Optional[MatchingConfig] = None) -> ImageMatches:
    matcher = RegionMatcher(embedder, cfg or config(), "masked", lexicon=lambda lemma: LEXICON.get(lemma, ()))
    return matcher.match_batch([ImageInput(image, masks, tuple(parses))])[0]


def picked(found: ImageMatches, level: str = "object", label: Optional[str] = None) -> list[int]:
    return sorted(m.mask_index for m in found.matches if m.level == level and (label is None or m.label == label))


# four separate boxes, one near-duplicate of the first, a big box holding two small ones
A, A2, B, C, D = (2, 2, 20, 20), (3, 2, 21, 20), (30, 2, 48, 20), (2, 30, 20, 48), (40, 40, 60, 60)
BIG, IN1, IN2 = (10, 10, 50, 50), (14, 14, 24, 24), (34, 34, 44, 44)


# --- objects ---------------------------------------------------------------------------------


def test_singular_noun_takes_its_best_mask_and_records_provenance() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, B], [{"dog": 0.6}, {"dog": 0.9}])
    caption = parse(noun("grass"), noun("dog", phrase="a brown dog"))
    found = match_one(emb, image, masks, [parse(noun("cat")), caption])
    assert len(found.matches) == 1
    m = found.matches[0]
    assert (m.mask_index, m.label, m.level, m.source) == (1, "dog", "object", "caption")
    assert m.similarity == pytest.approx(0.9) and 0.99 < m.score <= 1.0
    assert m.caption_index == 1 and m.noun is not None and m.noun.phrase == "a brown dog"


def test_counted_plural_takes_top_k_distinct_masks() -> None:
    emb = TableEmbedder()
    sims = [{"dog": 0.9}, {"dog": 0.85}, {"dog": 0.7}, {"dog": 0.6}]
    image, masks = setup_image(emb, [A, A2, B, C], sims)
    found = match_one(emb, image, masks, [parse(noun("dog", count=2, plural=True))])
    assert picked(found) == [0, 2]  # A2 overlaps A (NMS), C is third
    scores = [m.score for m in found.matches]
    assert scores == sorted(scores, reverse=True)


def test_nms_threshold_is_configurable() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, A2, B], [{"dog": 0.9}, {"dog": 0.85}, {"dog": 0.7}])
    found = match_one(emb, image, masks, [parse(noun("dog", count=2, plural=True))], config(instance_nms_iou=0.95))
    assert picked(found) == [0, 1]


def test_uncounted_plural_takes_all_distinct_masks_above_threshold() -> None:
    emb = TableEmbedder()
    sims = [{"dog": 0.9}, {"dog": 0.85}, {"dog": 0.7}, {"dog": 0.6}, {"dog": 0.05}]
    image, masks = setup_image(emb, [A, A2, B, C, D], sims)
    found = match_one(emb, image, masks, [parse(noun("dog", plural=True))])
    assert picked(found) == [0, 2, 3]


def test_most_demanding_mention_of_a_lemma_wins() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, B, C], [{"dog": 0.9}, {"dog": 0.8}, {"dog": 0.7}])
    parses = [parse(noun("dog", phrase="a dog")), parse(noun("dog", count=2, plural=True, phrase="two dogs"))]
    found = match_one(emb, image, masks, parses)
    assert picked(found) == [0, 1]
    assert {m.caption_index for m in found.matches} == {1}
    assert nouns_at_level(parses, "object")[0].noun.phrase == "two dogs"


def test_background_rejects_a_mask_even_without_thresholds() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, B], [{"dog": 0.5, "background": 0.9}, {"dog": 0.4}])
    found = match_one(emb, image, masks, [parse(noun("dog", plural=True))],
                      config(similarity_threshold=-1.0, probability_threshold=0.0))
    assert picked(found) == [1]


def test_probability_threshold() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A], [{"dog": 0.5, "cat": 0.5}])  # p(dog) = p(cat) ~ 0.497
    parses = [parse(noun("dog"), noun("cat"))]
    assert match_one(emb, image, masks, parses, config(probability_threshold=0.6)).matches == ()
    found = match_one(emb, image, masks, parses, config(probability_threshold=0.4))
    assert [(m.label, m.mask_index) for m in found.matches] == [("dog", 0)]  # tie: first noun wins


def test_similarity_threshold() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, B], [{"dog": 0.15}, {"dog": 0.25}])
    found = match_one(emb, image, masks, [parse(noun("dog", plural=True))], config(similarity_threshold=0.2))
    assert picked(found) == [1]
    assert found.matches[0].score > 0.8  # probability alone would have kept both


def test_one_object_label_per_mask_conflict_resolved_by_score() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, B], [{"dog": 0.9, "cat": 0.8}, {"cat": 0.5}])
    cfg = config(probability_threshold=0.2)  # on mask A: p(dog) ~ 0.73, p(cat) ~ 0.27, both eligible
    found = match_one(emb, image, masks, [parse(noun("cat"), noun("dog"))], cfg)
    assert {m.label: m.mask_index for m in found.matches} == {"dog": 0, "cat": 1}
    only_a = match_one(emb, image, masks.select([0]), [parse(noun("cat"), noun("dog"))], cfg)
    assert [(m.label, m.mask_index) for m in only_a.matches] == [("dog", 0)]


class AliasEmbedder(TableEmbedder):
    """Labels in ``aliases`` get the embedding of the label they alias (a perfect synonym)."""

    def __init__(self, aliases: Mapping[str, str]) -> None:
        super().__init__()
        self.aliases = dict(aliases)

    def embed_labels(self, labels: Sequence[str]) -> np.ndarray:
        return super().embed_labels([self.aliases.get(label, label) for label in labels])


def test_synonym_groups_link_close_label_embeddings_transitively() -> None:
    text = np.array([[1.0, 0.0, 0.0], [0.96, 0.28, 0.0], [0.0, 1.0, 0.0], [0.85, 0.527, 0.0], [0.0, 0.0, 1.0]])
    assert synonym_groups(text, None) == [[0], [1], [2], [3], [4]]
    assert synonym_groups(text, 0.95) == [[0, 1, 3], [2], [4]]  # 3 joins through 1 (cos 0.85 to 0)
    assert synonym_groups(text, 0.99) == [[0], [1], [2], [3], [4]]


def test_synonyms_share_one_slot_and_their_probability() -> None:
    emb = AliasEmbedder({"automobile": "car"})
    image, masks = setup_image(emb, [A, B], [{"car": 0.9}, {"car": 0.6}])
    captions = [parse(noun("car")), parse(noun("automobile"))]
    split = match_one(emb, image, masks, captions, config(probability_threshold=0.2))
    assert sorted((m.label, m.mask_index) for m in split.matches) == [("automobile", 1), ("car", 0)]
    merged = match_one(emb, image, masks, captions, config(probability_threshold=0.2, merge_similarity=0.9))
    assert [(m.label, m.mask_index) for m in merged.matches] == [("car", 0)]
    assert merged.matches[0].score == pytest.approx(2 * split.matches[0].score if split.matches[0].label == "car"
                                                    else 2 * split.matches[1].score)


def test_merged_synonyms_take_the_largest_demand() -> None:
    emb = AliasEmbedder({"automobile": "car"})
    image, masks = setup_image(emb, [A, B, C], [{"car": 0.9}, {"car": 0.8}, {"car": 0.7}])
    captions = [parse(noun("car")), parse(noun("automobile", count=2, plural=True))]
    found = match_one(emb, image, masks, captions, config(merge_similarity=0.9))
    assert [(m.label, m.mask_index) for m in found.matches] == [("automobile", 0), ("automobile", 1)]


def test_level_overlap_keeps_object_masks_apart() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [BIG, IN1, D], [{"dog": 0.9}, {"cat": 0.9}, {"cat": 0.2}])
    captions = [parse(noun("dog"), noun("cat"))]
    assert picked(match_one(emb, image, masks, captions)) == [0, 1]
    apart = match_one(emb, image, masks, captions, config(level_overlap=0.5, probability_threshold=0.1))
    assert {m.label: m.mask_index for m in apart.matches} == {"dog": 0, "cat": 2}  # IN1 lies inside BIG


def test_vocabulary_objects_take_the_masks_captions_left_at_their_threshold() -> None:
    emb = TableEmbedder()
    sims = [{"dog": 0.9}, {"cat": 0.9}, {"cat": 0.5, "dog": 0.6}, {"car": 0.9}, {"cat": 0.8}]
    image, masks = setup_image(emb, [A, B, C, D, IN2], sims)
    captions = [parse(noun("dog"))]
    assert [m.label for m in match_one(emb, image, masks, captions).matches] == ["dog"]
    found = match_one(emb, image, masks, captions, config(object_vocabulary=("cat",), vocabulary_threshold=0.9))
    assert [(m.label, m.mask_index, m.source) for m in found.matches] == [
        ("dog", 0, "caption"), ("cat", 1, "vocabulary"), ("cat", 4, "vocabulary")]
    vocab = found.matches[1]
    assert (vocab.noun, vocab.caption_index) == (None, None)
    strict = match_one(emb, image, masks, captions, config(object_vocabulary=("cat",), vocabulary_threshold=0.9995))
    # p(cat): 0.99975 on B, 0.99933 on IN2
    assert [(m.label, m.mask_index) for m in strict.matches] == [("dog", 0), ("cat", 1)]
    alone = match_one(emb, image, masks, [parse()], config(object_vocabulary=("cat", "car")))
    # without 'dog' in the softmax, C is a cat too
    assert sorted((m.label, m.mask_index) for m in alone.matches) == [("car", 3), ("cat", 1), ("cat", 2), ("cat", 4)]


def test_vocabulary_word_a_caption_noun_covers_is_left_to_it() -> None:
    emb = AliasEmbedder({"automobile": "car"})
    image, masks = setup_image(emb, [A, B], [{"car": 0.9}, {"car": 0.8}])
    captions = [parse(noun("automobile"))]
    loose = config(object_vocabulary=("car",), vocabulary_threshold=0.4)
    assert [(m.label, m.mask_index) for m in match_one(emb, image, masks, captions, loose).matches] == [
        ("automobile", 0), ("car", 1)]
    merged = match_one(emb, image, masks, captions, loose.model_copy(update={"merge_similarity": 0.9}))
    assert [(m.label, m.mask_index) for m in merged.matches] == [("automobile", 0)]


def test_vocabulary_objects_get_lexicon_parts() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [BIG, IN1, D], [{"dog": 0.9}, {"tail": 0.9}, {"cat": 0.9}])
    found = match_one(emb, image, masks, [parse(noun("cat"))],
                      config(object_vocabulary=("dog",), lexicon_parts=True, lexicon_part_threshold=0.5))
    assert [(m.label, m.mask_index, m.source, m.parent_match) for m in found.matches] == [
        ("cat", 2, "caption", None), ("dog", 0, "vocabulary", None), ("tail", 1, "lexicon", 1)]


def test_small_masks_are_not_candidates() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, (50, 50, 52, 52)], [{"dog": 0.5}, {"dog": 0.9}])
    found = match_one(emb, image, masks, [parse(noun("dog"))], config(min_mask_area_fraction=0.01))
    assert len(found.masks) == 1 and picked(found) == [0]


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


# --- parts ------------------------------------------------------------------------------------


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


CROWN, TRUNK = (10, 4, 40, 24), (22, 24, 28, 40)  # a tree matched by its crown; the trunk touches it below


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


def test_dilate_and_widened_box() -> None:
    mask = box_mask((10, 10, 20, 30))
    assert dilate(mask, 2).sum() == 14 * 24 and dilate(mask, 0).sum() == mask.sum()
    assert np.array_equal(widened_box(mask, 0.5), box_mask((5, 0, 25, 40)))
    assert np.array_equal(widened_box(box_mask((0, 0, 4, 4)), 1.0), box_mask((0, 0, 8, 8)))
    assert not widened_box(np.zeros(SIZE, bool), 1.0).any()


# --- scene --------------------------------------------------------------------------------------


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


# --- batches, determinism, trees ---------------------------------------------------------------


def test_batch_embeds_once_and_equals_images_alone() -> None:
    emb = TableEmbedder()
    img0, masks0 = setup_image(emb, [A, B], [{"dog": 0.9}, {"cat": 0.9}], seed=0)
    img1, masks1 = setup_image(emb, [BIG, IN1], [{"car": 0.9}, {"wheel": 0.9}], scene={"street": 0.9}, seed=1)
    items = [ImageInput(img0, masks0, (parse(noun("dog"), noun("cat")),)),
             ImageInput(img1, masks1, (parse(noun("street", level="scene"), noun("car"),
                                              noun("wheel", level="part", parent=1)),))]
    matcher = RegionMatcher(emb, config(), "masked")
    batch = matcher.label_batch(items)
    assert (emb.crop_calls, emb.label_calls) == (2, 1)  # regions, whole images; labels
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


# --- the real open_clip embedder ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip() -> clip_module.OpenClipEmbedder:
    from ovlabel.pipelines.options import load_run_config as load_config

    cfg = load_config(config_path("tiny.yaml")).clip
    return clip_module.OpenClipEmbedder(cfg, "cpu")


@pytest.mark.parametrize("mode", ["masked", "box", "blend"])
def test_crop_modes_run_through_open_clip(tiny_clip: clip_module.OpenClipEmbedder, mode: str) -> None:
    image = noise_image(3)
    masks = MaskBatch.from_masks(np.stack([box_mask(BIG), box_mask(IN1), box_mask(B)]))
    parses = [parse(noun("field", level="scene"), noun("dog", plural=True), noun("ear", level="part", parent=1))]
    cfg = config(similarity_threshold=-1.0, probability_threshold=0.0, part_containment=0.8)
    tree = label_image(tiny_clip, cfg, image, masks, parses, mode)
    assert tree[0].level == "scene" and all(0.0 <= s.score <= 1.0 for s in tree)
    assert tiny_clip.crop_size == 64


def test_text_cache_is_bounded_and_transparent(tiny_clip: clip_module.OpenClipEmbedder,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clip_module, "TEXT_CACHE_SIZE", 2)
    tiny_clip._text_cache.clear()
    first = tiny_clip.embed_labels(["dog", "cat", "car", "dog"])
    assert list(tiny_clip._text_cache) == ["cat", "car"]
    again = tiny_clip.embed_labels(["dog", "cat", "car", "dog"])
    np.testing.assert_allclose(first, again, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert len(tiny_clip._text_cache) == 2
    assert ClipConfig().templates  # the prompt ensemble is configurable (clip.templates)


def test_flip_average_embeds_a_crop_and_its_mirror_alike(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    crops = np.stack([noise_image(5, (64, 64)), noise_image(6, (64, 64))])
    mirrored = np.ascontiguousarray(crops[:, :, ::-1])
    assert not np.allclose(tiny_clip.embed_crops(crops), tiny_clip.embed_crops(mirrored), atol=1e-3)
    flipping = clip_module.OpenClipEmbedder(tiny_clip.cfg.model_copy(update={"flip_average": True}), "cpu")
    both = flipping.embed_crops(crops)
    np.testing.assert_allclose(both, flipping.embed_crops(mirrored), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(flipping.embed_crops(crops[:1]), both[:1], atol=1e-6)  # batch-invariant
