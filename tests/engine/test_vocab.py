"""Part lexicons: the shipped parts.yaml and lexicons a config names."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.vocab import load_part_lexicon, part_lexicon, parts_of


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
