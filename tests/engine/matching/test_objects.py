"""The object level: caption nouns, counts, thresholds, synonyms, level overlap, vocabulary objects."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine.matching import ImageInput, RegionMatcher, nouns_at_level
from tests.engine.matching.helpers import (A, A2, B, BIG, C, D, IN1, IN2, AliasEmbedder, TableEmbedder, config,
                                           match_one, noun, parse, picked, setup_image)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


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


def test_captionless_words_label_only_images_whose_captions_name_no_object() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, B], [{"dog": 0.9}, {"cat": 0.9}])
    matcher = RegionMatcher(emb, config(vocabulary_threshold=0.5), captionless_words=("cat", "car"))
    none, named = matcher.match_batch([ImageInput(image, masks, ()), ImageInput(image, masks, (parse(noun("dog")),))])
    assert [(m.label, m.mask_index, m.source) for m in none.matches] == [("cat", 1, "vocabulary")]
    assert [(m.label, m.source) for m in named.matches] == [("dog", "caption")]  # a captioned image: captions only
    # object_vocabulary, when set, is what a captionless image is labelled from
    listed = RegionMatcher(emb, config(object_vocabulary=("dog",), vocabulary_threshold=0.5), captionless_words=("cat",))
    assert [m.label for m in listed.match_batch([ImageInput(image, masks, ())])[0].matches] == ["dog"]


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



# count fill: a counted noun short of its count takes its next masks down to count_fill_threshold
FILL = [{"dog": 0.9}, {"dog": 0.5, "background": 0.4}, {"dog": 0.45, "background": 0.4},
        {"dog": 0.3, "background": 0.4}]  # p(dog) ~ 1.0, 0.73, 0.62; the last loses to background


@pytest.mark.parametrize("fill, expected", [(None, [0]), (0.5, [0, 1]), (0.7, [0, 1]), (0.75, [0]), (0.0, [0, 1])])
def test_count_fill_takes_what_a_counted_noun_lacks_down_to_its_threshold(fill: float | None,
                                                                           expected: list[int]) -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, B, C, D], FILL)
    found = match_one(emb, image, masks, [parse(noun("dog", count=2, plural=True))],
                      config(probability_threshold=0.9, count_fill_threshold=fill))
    assert picked(found) == expected  # never more than the count, never a mask background wins


def test_count_fill_gives_a_singular_noun_its_one_mask_with_its_probability() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [B, C], FILL[1:3])
    parses = [parse(noun("dog"))]
    assert match_one(emb, image, masks, parses, config(probability_threshold=0.9)).matches == ()
    found = match_one(emb, image, masks, parses, config(probability_threshold=0.9, count_fill_threshold=0.5))
    (m,) = found.matches
    assert (m.mask_index, m.label, m.source) == (0, "dog", "caption")
    assert m.score == pytest.approx(np.exp(5) / (np.exp(5) + np.exp(4)), rel=1e-4)


def test_count_fill_leaves_uncounted_plurals_alone() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, B, C], FILL[:3])
    found = match_one(emb, image, masks, [parse(noun("dog", plural=True))],
                      config(probability_threshold=0.9, count_fill_threshold=0.5))
    assert picked(found) == [0]


def test_count_fill_keeps_the_earlier_masks_nms() -> None:
    emb = TableEmbedder()
    image, masks = setup_image(emb, [A, A2, B], [FILL[0], FILL[1], FILL[2]])  # A2 nearly duplicates A
    found = match_one(emb, image, masks, [parse(noun("dog", count=2, plural=True))],
                      config(probability_threshold=0.9, count_fill_threshold=0.5))
    assert picked(found) == [0, 2]


@pytest.mark.parametrize("margin, expected", [(None, {"fridge": [0]}), (0.05, {"fridge": [1], "man": [2]})])
def test_object_swap_frees_a_noun_a_larger_mask_of_another_noun_hid(margin: float | None,
                                                                     expected: dict[str, list[int]]) -> None:
    emb = TableEmbedder()  # BIG holds the fridge (IN1) and the man (IN2), and scores a hair above IN1 as fridge
    image, masks = setup_image(emb, [BIG, IN1, IN2], [{"fridge": 0.9}, {"fridge": 0.85}, {"man": 0.8}])
    found = match_one(emb, image, masks, [parse(noun("fridge"), noun("man"))],
                      config(level_overlap=0.3, object_swap_margin=margin))
    assert {label: picked(found, label=label) for label in ("fridge", "man") if picked(found, label=label)} == expected
