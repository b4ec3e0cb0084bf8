"""The demo config's word lists agree with the demo world they describe."""
from __future__ import annotations

from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import load_run_config
from ovlabel.engine.demo.objects import OBJECT_PARTS
from ovlabel.engine.demo.scenes import OBJECT_CATEGORIES, PART_CATEGORIES, SCENE_TYPES
from ovlabel.engine.demo.templates import SCENE_NOUN_PHRASES, SCENE_PHRASES, surface_words
from ovlabel.engine.demo.world import all_categories, category_words, demo_vocabulary
from ovlabel.engine.vocab import part_lexicon


def test_demo_part_lexicon_lists_each_objects_parts_under_every_name() -> None:
    cfg = load_run_config(config_path("demo.yaml"))
    assert cfg.matching.lexicon_parts and cfg.matching.part_lexicon == "vocab/demo_parts.yaml"
    lexicon = part_lexicon(cfg.matching.part_lexicon)
    vocabulary = demo_vocabulary()
    for category in vocabulary.classes:
        for word in vocabulary.words(category):
            assert set(lexicon(word)) == set(OBJECT_PARTS.get(category, ())), word


def test_demo_vocabulary_is_the_worlds_categories_under_every_caption_word() -> None:
    vocabulary = demo_vocabulary()
    assert vocabulary.classes == (*OBJECT_CATEGORIES, *PART_CATEGORIES, *SCENE_TYPES)
    assert set(vocabulary.classes) == set(all_categories())
    for category in (*OBJECT_CATEGORIES, *PART_CATEGORIES):
        for word in surface_words(category):  # singular and plural, every synonym the templates use
            assert vocabulary.class_of(word) == category, word
    for scene in SCENE_TYPES:
        for phrase in (*SCENE_PHRASES[scene], *SCENE_NOUN_PHRASES[scene]):
            assert vocabulary.class_of(phrase.split()[-1]) in (scene, "night sky"), phrase
    assert vocabulary.class_of("sky") == vocabulary.class_of("starry sky") == "night sky"
    # the demo CLIP's training words (scripts/train_demo_clip.py): the category, then its other words sorted
    assert category_words("person") == ("person", "man", "men", "people", "woman", "women")
    assert category_words("dog") == ("dog", "puppies", "puppy") and category_words("tree") == ("tree",)


def test_demo_config_labels_with_the_demo_vocabulary() -> None:
    cfg = load_run_config(config_path("demo.yaml"))
    assert cfg.vocabulary.file == "demo" and cfg.vocabulary.unmapped == "keep"


def test_demo_object_vocabulary_is_the_worlds_object_categories() -> None:
    cfg = load_run_config(config_path("demo.yaml"))
    assert sorted(cfg.matching.object_vocabulary) == sorted(OBJECT_PARTS)
