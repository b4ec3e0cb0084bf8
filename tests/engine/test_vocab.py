"""Caption vocabulary: the shipped word lists, scenes and part lexicons (parts.yaml and lexicons a config names)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ovlabel.engine.shipped import CONFIG_DIR
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.vocab import VOCAB_DIR, is_part_of, is_scene, load_part_lexicon, load_vocab, part_lexicon, parts_of


def test_default_lexicon_is_parts_yaml() -> None:
    assert part_lexicon(None) is parts_of
    assert {"wheel", "door"} <= parts_of("car") and "head" in parts_of("Man")


def test_a_lexicon_file_with_groups_and_aliases(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text("groups:\n  legs: [leg, paw]\n"
                    "wholes:\n  dog: {aliases: [puppy], groups: [legs], parts: [tail]}\n  cup: {parts: [Handle]}\n")
    lexicon = part_lexicon(str(path))
    assert lexicon("dog") == lexicon("Puppy") == {"leg", "paw", "tail"}
    assert lexicon("cup") == {"handle"} and lexicon("car") == frozenset()


def test_relative_lexicon_resolves_in_the_configs_folder() -> None:
    assert load_part_lexicon("vocab/demo_parts.yaml")["tree"] == {"trunk", "crown"}


def test_missing_or_broken_lexicon_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="matching.part_lexicon"):
        part_lexicon(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("wholes:\n  dog: {groups: [missing]}\n")
    with pytest.raises(ConfigError, match="bad.yaml: whole 'dog' names unknown groups"):
        part_lexicon(str(bad))
    unparsable = tmp_path / "unparsable.yaml"
    unparsable.write_text("wholes: [dog\n")
    with pytest.raises(ConfigError, match="(?s)cannot be read .*set matching.part_lexicon"):
        part_lexicon(str(unparsable))


def test_vocab_files_live_in_the_config_dir() -> None:
    assert VOCAB_DIR == CONFIG_DIR / "vocab"
    for name in ("nouns.yaml", "scenes.yaml", "parts.yaml"):
        assert (VOCAB_DIR / name).is_file()


def test_scene_vocabulary_covers_places365() -> None:
    data = yaml.safe_load((VOCAB_DIR / "scenes.yaml").read_text())
    assert len(data["places365"]) == 365
    assert data["places365"]["living_room"] == "living room"
    assert data["places365"]["bus_interior"] == "bus interior"


@pytest.mark.parametrize("lemma", ["kitchen", "beach", "street", "field", "bathroom", "living room", "skate park",
                                   "airport terminal", "forest"])
def test_is_scene(lemma: str) -> None:
    assert is_scene(lemma)


@pytest.mark.parametrize("lemma", ["car", "bus", "train", "boat", "shower", "fountain", "dog", "road", "table",
                                   "house", "home"])
def test_objects_are_not_scenes(lemma: str) -> None:
    assert not is_scene(lemma)


def test_parts_of() -> None:
    person = parts_of("person")
    assert {"hand", "head", "hair", "leg"} <= person
    for alias in ("man", "woman", "boy", "girl", "child", "people"):
        assert parts_of(alias) == person or person <= parts_of(alias)
    assert "handle" in parts_of("bike") and "wheel" in parts_of("bicycle")
    assert {"lid", "seat", "tank"} <= parts_of("toilet")
    assert "door" in parts_of("refrigerator") and "door" in parts_of("car")
    assert {"tail", "paw", "ear"} <= parts_of("dog")
    assert "trunk" in parts_of("elephant") and "wing" in parts_of("airplane")
    assert {"trunk", "branch", "crown", "leaf"} <= parts_of("tree")
    assert {"roof", "door", "window"} <= parts_of("home") and parts_of("home") == parts_of("house")
    assert "hand" not in parts_of("frisbee")
    assert parts_of("no such thing") == frozenset()
    assert is_part_of("Hand", "Man") and not is_part_of("frisbee", "man")


def test_vocabulary_is_loaded_once() -> None:
    assert load_vocab() is load_vocab()
    assert {"photo", "side", "top", "front", "couple", "group", "pair"} <= load_vocab().stop
    assert load_vocab().quantity["pair"] == 2

