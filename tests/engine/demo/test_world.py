"""The demo config's word lists agree with the demo world they describe."""
from __future__ import annotations

from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import load_run_config
from ovlabel.engine.demo.objects import OBJECT_PARTS
from ovlabel.engine.demo.world import DEMO_SYNONYMS
from ovlabel.engine.vocab import part_lexicon


def test_demo_part_lexicon_lists_each_objects_parts_under_every_name() -> None:
    cfg = load_run_config(config_path("demo.yaml"))
    assert cfg.matching.lexicon_parts and cfg.matching.part_lexicon == "vocab/demo_parts.yaml"
    lexicon = part_lexicon(cfg.matching.part_lexicon)
    for word, category in DEMO_SYNONYMS.items():
        expected = set(OBJECT_PARTS.get(category, ()))
        assert set(lexicon(word)) == expected, word


def test_demo_object_vocabulary_is_the_worlds_object_categories() -> None:
    cfg = load_run_config(config_path("demo.yaml"))
    assert sorted(cfg.matching.object_vocabulary) == sorted(OBJECT_PARTS)
