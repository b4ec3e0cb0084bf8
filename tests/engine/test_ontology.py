"""Label vocabularies: words to classes (synonyms, plurals, multiword names), the unmapped policy, classes.json."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.hierarchy import root_segment
from ovlabel.engine.ontology import (UNLABELLED_SCENE, class_table, classify, load_vocabulary, plural,
                                     shipped_vocabularies, word_key)
from ovlabel.engine.records import Segment
from ovlabel.engine.vocab import load_vocab

SIZE = (4, 6)
MASK = {"size": [4, 6], "counts": "0R0"}


def write(tmp_path: Path, text: str, name: str = "mine.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def mine(tmp_path: Path) -> str:
    return write(tmp_path, "person: [man, woman, kid]\ncar: automobile\ncell_phone: [Mobile-Phone]\n"
                           "tree:\nhot dog: []\nbus: []\n")


def test_synonyms_plurals_case_and_spelling_find_the_class(mine: str) -> None:
    v = load_vocabulary(mine)
    assert v.classes == ("person", "car", "cell phone", "tree", "hot dog", "bus")
    assert v.words("person") == ("person", "man", "woman", "kid") and v.words("tree") == ("tree",)
    assert [v.class_of(w) for w in ("Woman", "women", "kids", "people", "automobiles", "buses", "trees")] == [
        "person", "person", "person", "person", "car", "bus", "tree"]
    assert v.class_of("mobile phone") == v.class_of("cell-phones") == v.class_of("Cell_Phone") == "cell phone"
    assert v.class_of("dog") is None and v.class_of("") is None and v.class_of(None) is None


def test_multiword_names_match_whole(mine: str) -> None:
    v = load_vocabulary(mine)
    assert v.class_of("hot dog") == "hot dog" and v.class_of("hot dogs") == "hot dog"
    assert v.class_of("dog") is None and v.class_of("hot") is None  # neither word alone is the name
    assert v.multiword == frozenset({"hot dog", "cell phone", "mobile phone"})
    assert word_key(" Hot_Dog ") == "hot dog" and plural("night sky") == "night skies" and plural("knife") == "knives"


def test_a_listed_word_wins_over_a_plural(tmp_path: Path) -> None:
    v = load_vocabulary(write(tmp_path, "glass: []\nglasses: [spectacles]\n"))
    assert v.class_of("glasses") == "glasses" and v.class_of("glass") == "glass"


def _seg(seg_id: int, parent: int | None, level: str, label: str) -> Segment:
    return Segment(seg_id, parent, level, label, 0.9, "caption", MASK, (0.0, 0.0, 1.0, 1.0), 1)


def _tree() -> list[Segment]:
    return [root_segment(SIZE, "kitchen", 0.8, noun=None), _seg(1, 0, "object", "woman"), _seg(2, 0, "object", "dog"),
            _seg(3, 0, "object", "automobile"), _seg(4, 2, "part", "tail"), _seg(5, 3, "part", "wheel"),
            _seg(6, 1, "part", "hat")]


def test_unmapped_keep_gives_a_word_its_own_class(mine: str) -> None:
    found = classify(_tree(), load_vocabulary(mine), "keep")
    assert found.dropped == ()
    assert [(s.label, s.class_name) for s in found.segments[1:]] == [
        ("woman", "person"), ("dog", "dog"), ("automobile", "car"), ("tail", "tail"), ("wheel", "wheel"), ("hat", "hat")]
    assert [s.to_row()["class_name"] for s in found.segments][:2] == [UNLABELLED_SCENE, "person"]


def test_unmapped_drop_leaves_segments_out_with_a_reason_and_renumbers(tmp_path: Path) -> None:
    v = load_vocabulary(write(tmp_path, "person: [woman]\ncar: [automobile]\nwheel: []\nkitchen: []\n"))
    root = Segment(0, None, "scene", "galley", 0.7, "caption", MASK, (0.0, 0.0, 6.0, 4.0), 24)  # a scene noun
    found = classify([root, *_tree()[1:]], v, "drop")
    # dog: unmapped; its tail: its object dropped; the hat on the woman: unmapped; the root only loses its class
    assert found.dropped == ("unmapped_scene", "unmapped_object", "object_dropped", "unmapped_part")
    assert [(s.segment_id, s.parent_id, s.label, s.class_name) for s in found.segments] == [
        (0, None, "galley", UNLABELLED_SCENE), (1, 0, "woman", "person"), (2, 0, "automobile", "car"),
        (3, 2, "wheel", "wheel")]  # dog (and its tail) and the unlisted hat are gone; the root always stays
    assert classify(_tree(), v, "drop").segments[0].class_name == UNLABELLED_SCENE  # the unlabelled root: no reason
    assert classify(_tree(), None, "keep").segments[3].class_name == "automobile"  # no vocabulary: the label
    with pytest.raises(ConfigError, match="keep, drop"):
        classify(_tree(), v, "ignore")


def test_classes_json_ids_follow_the_vocabulary_then_sorted_extra_words(mine: str) -> None:
    v = load_vocabulary(mine)
    counts = {("person", "object"): 3, ("zebra", "object"): 1, ("tail", "part"): 2, ("scene", "scene"): 4}
    table = class_table(v, counts, "3")
    assert table["schema_version"] == "3" and table["vocabulary"] == {"name": v.name, "sha256": v.sha256}
    names = [c["name"] for c in table["classes"]]
    assert names == [*v.classes, "scene", "tail", "zebra"] and [c["id"] for c in table["classes"]] == list(range(1, 10))
    assert table["classes"][0]["counts"] == {"scene": 0, "object": 3, "part": 0}
    assert class_table(None, counts, "3")["vocabulary"] == {"name": None, "sha256": None}


@pytest.mark.parametrize("text, message", [
    ("", "at least one class"),
    ("- person\n- car\n", "must hold a mapping"),
    ("person: [man\n", "not valid UTF-8 YAML"),
    ("person: [man, 3]\n", "synonyms of 'person' must be a list of words"),
    ("person: {man: 1}\n", "synonyms of 'person'"),
    ("yes: [ok]\n", "is not a name"),
    ("person: [man]\nguy: [man]\n", "'man' under both 'person' and 'guy'"),
    ("person: [guy]\nguy: []\n", "'guy' under both 'person' and 'guy'"),
    ("person: [man]\nperson: [woman]\n", "lists the class 'person' twice"),
    ("a: &x [b, *x]\n", "recursive YAML alias"),
])
def test_a_bad_file_is_a_config_error_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_vocabulary(path)
    assert path in str(caught.value)


def test_missing_and_unknown_vocabularies_say_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found.*coco, demo, lvis"):
        load_vocabulary(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="no shipped vocabulary 'cocoa'"):
        load_vocabulary("cocoa")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00person")
    with pytest.raises(ConfigError, match="bin.yaml"):
        load_vocabulary(str(tmp_path / "bin.yaml"))


def test_shipped_vocabularies() -> None:
    assert shipped_vocabularies() == ("coco", "demo", "lvis")
    coco, lvis, demo = (load_vocabulary(n) for n in ("coco", "lvis", "demo"))
    assert (len(coco.classes), len(lvis.classes), len(demo.classes)) == (80, 1203, 30)
    assert coco.name == "coco" and len(coco.sha256) == 64
    assert [coco.class_of(w) for w in ("man", "children", "bike", "fridge", "tv", "hot dog", "cellphone")] == [
        "person", "person", "bicycle", "refrigerator", "tv", "hot dog", "cell phone"]
    assert [lvis.class_of(w) for w in ("automobile", "car", "man", "dogs", "aeroplane")] == [
        "car (automobile)", "car (automobile)", "person", "dog", "airplane"]
    assert lvis.class_of("cap") is None  # 'cap (headwear)' and 'bottle cap' both have it: it names neither
    # COCO's multiword class names are names the caption parser keeps whole, so captions can name them
    assert {k for k in coco.multiword if k in coco.classes} <= load_vocab().multiword
    assert pickle.loads(pickle.dumps(coco)) == coco  # travels to Beam workers


def test_vocabulary_is_read_from_its_bytes_each_time(tmp_path: Path) -> None:
    path = write(tmp_path, "cat: []\n")
    first = load_vocabulary(path)
    write(tmp_path, "cat: [kitten]\n")
    second = load_vocabulary(path)
    assert second.class_of("kitten") == "cat" and first.class_of("kitten") is None and first.sha256 != second.sha256

