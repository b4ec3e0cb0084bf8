"""Honest models: the labels a CLIP knows, the caption nouns outside them, warned about or refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovlabel.engine.captions import CaptionParser
from ovlabel.engine.demo import generate_scene
from ovlabel.engine.demo.world import all_categories, category_words
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.known_labels import KnownLabels, check_known_labels, known_labels, sample_counts, shown
from ovlabel.engine.shipped import config_path
from ovlabel.engine.vocab import load_label_list
from ovlabel.pipelines.options import load_run_config

REAL_PHOTO_CAPTIONS = [("An elephant walks past a leaf.",), ("A leaf on a rock.", "Two big leaves."),
                       ("A dog next to a house.",)]


@pytest.fixture(scope="module")
def parser() -> CaptionParser:
    return CaptionParser(load_run_config(config_path("demo.yaml")).captions.spacy_model)


def test_the_demo_config_declares_exactly_the_words_its_clip_was_trained_on() -> None:
    cfg = load_run_config(config_path("demo.yaml"))
    known = known_labels(cfg.clip)
    assert known is not None and cfg.clip.unknown_labels == "warn"
    trained = {w for c in all_categories() for w in category_words(c)} | set(cfg.matching.background_labels)
    assert known.labels == trained and len(known.labels) == 49  # what scripts/train_demo_clip.py trains on


def test_the_demo_worlds_own_captions_name_no_label_outside_them(parser: CaptionParser) -> None:
    cfg = load_run_config(config_path("demo.yaml"))
    known = known_labels(cfg.clip)
    assert known is not None
    captions = [generate_scene(seed, 64).captions for seed in range(10_000, 10_030)]
    assert sample_counts(known, captions, parser, cfg.captions.max_chars) == {}


def test_real_photo_captions_are_counted_per_row(parser: CaptionParser) -> None:
    known = known_labels(load_run_config(config_path("demo.yaml")).clip)
    assert known is not None
    counts = sample_counts(known, REAL_PHOTO_CAPTIONS, parser, 2000)
    assert counts == {"elephant": 1, "leaf": 2, "rock": 1}  # 'leaves' is 'leaf'; 'dog' and 'house' are known
    assert shown(counts) == "leaf ×2, elephant ×1, rock ×1"
    message = known.warning(counts)
    assert message.startswith("the CLIP ovlabel-tiny-clip knows 49 labels (clip.known_labels: vocab/demo_clip.yaml); "
                              "4 caption nouns outside them (leaf ×2, elephant ×1, rock ×1) were labelled by a model "
                              "that never saw them")
    assert "clip.unknown_labels=refuse" in message


def test_a_long_tail_is_cut_short() -> None:
    counts = {f"w{i}": i for i in range(1, 10)}
    assert shown(counts) == "w9 ×9, w8 ×8, w7 ×7, w6 ×6, w5 ×5, w4 ×4, ..."


def test_known_labels_are_a_file_or_a_list(tmp_path: Path) -> None:
    listed = known_labels(load_run_config(config_path("tiny.yaml"), ["clip.known_labels=[Dog, Night_Sky]"]).clip)
    assert listed == KnownLabels(frozenset({"dog", "night sky"}), "clip.known_labels", "ovlabel-tiny-clip")
    (tmp_path / "words.yaml").write_text("- dog\n- cat\n")
    assert load_label_list(str(tmp_path / "words.yaml")) == {"dog", "cat"}
    assert known_labels(load_run_config(config_path("tiny.yaml")).clip) is None
    for bad, says in (("clip.known_labels=[]", "empty list"), (f"clip.known_labels={tmp_path / 'no.yaml'}", "not found")):
        with pytest.raises(ConfigError, match=says):
            known_labels(load_run_config(config_path("tiny.yaml"), [bad]).clip)
    (tmp_path / "odd.yaml").write_text("labels: 3\n")
    with pytest.raises(ConfigError, match="must hold a list of labels"):
        load_label_list(str(tmp_path / "odd.yaml"))


def test_refuse_stops_preflight_on_the_first_rows_captions_and_warn_does_not() -> None:
    refuse = load_run_config(config_path("demo.yaml"), ["clip.unknown_labels=refuse"])
    with pytest.raises(ConfigError) as err:
        check_known_labels(refuse, REAL_PHOTO_CAPTIONS)
    assert str(err.value).startswith("clip.unknown_labels=refuse: the CLIP ovlabel-tiny-clip knows 49 labels "
                                     "(clip.known_labels: vocab/demo_clip.yaml); the captions of the first 3 manifest "
                                     "rows name 4 outside them (leaf ×2, elephant ×1, rock ×1)")
    check_known_labels(refuse, [("A dog next to a house under the moon.",)])
    check_known_labels(load_run_config(config_path("demo.yaml")), REAL_PHOTO_CAPTIONS)  # warn: the run counts them


def test_refuse_stops_a_config_whose_own_words_the_clip_does_not_know() -> None:
    cfg = load_run_config(config_path("demo.yaml"), ["clip.unknown_labels=refuse",
                                                     "matching.object_vocabulary=[tree, elephant]"])
    with pytest.raises(ConfigError, match=r"the config itself names 1 outside them \(elephant\)"):
        check_known_labels(cfg)
