"""scripts/make_lvis_vocabulary.py: LVIS categories -> a vocabulary file, qualifiers dropped where unambiguous."""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

from ovlabel.engine.ontology import load_vocabulary

CATEGORIES = [
    {"id": 2, "name": "bat_(animal)", "synonyms": ["bat_(animal)"]},
    {"id": 1, "name": "car_(automobile)", "synonyms": ["car_(automobile)", "auto_(automobile)", "automobile"]},
    {"id": 3, "name": "cap_(headwear)", "synonyms": ["cap_(headwear)"]},
    {"id": 4, "name": "bottle_cap", "synonyms": ["bottle_cap", "cap_(container_lid)"]},
    {"id": 5, "name": "fish", "synonyms": ["fish"]},
    {"id": 6, "name": "fish_(food)", "synonyms": ["fish_(food)"]},
    {"id": 7, "name": "hot-air_balloon", "synonyms": ["hot-air_balloon"]},
]


@pytest.fixture(scope="module")
def script(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("make_lvis_vocabulary")


def test_categories_become_classes_in_id_order_with_unambiguous_bare_words(script: ModuleType) -> None:
    entries = dict(script.vocabulary_entries(sorted(CATEGORIES, key=lambda c: c["id"])))
    assert list(entries) == ["car (automobile)", "bat (animal)", "cap (headwear)", "bottle cap", "fish", "fish (food)",
                             "hot-air balloon"]
    assert entries["car (automobile)"] == ["auto (automobile)", "automobile", "car", "auto"]
    assert entries["bat (animal)"] == ["bat"]
    assert entries["cap (headwear)"] == [] and entries["bottle cap"] == ["cap (container lid)"]  # 'cap' is both's
    assert entries["fish (food)"] == []  # 'fish' is another category's name


def test_both_source_formats_and_the_count_check(script: ModuleType, tmp_path: Path) -> None:
    as_json, as_module, out = tmp_path / "lvis.json", tmp_path / "lvis_v1_categories.py", tmp_path / "lvis.yaml"
    as_json.write_text(json.dumps({"categories": CATEGORIES}))
    as_module.write_text(f"# fmt: off\nLVIS_CATEGORIES = {CATEGORIES!r}  # noqa\n")
    assert script.read_categories(as_json) == script.read_categories(as_module)
    with pytest.raises(SystemExit, match="7 categories, LVIS v1 has 1203"):
        script.main([str(as_json), "--out", str(out)])
    script.EXPECTED = len(CATEGORIES)
    try:
        assert script.main([str(as_module), "--out", str(out)]) == 0
    finally:
        script.EXPECTED = 1203
    vocabulary = load_vocabulary(str(out))
    assert vocabulary.class_of("car") == "car (automobile)" and vocabulary.class_of("hot air balloons") == "hot-air balloon"
    assert "CC BY 4.0" in out.read_text()
