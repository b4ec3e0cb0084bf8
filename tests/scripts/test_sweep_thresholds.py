"""scripts/sweep_thresholds.py: a run's labels scored at stricter thresholds per segment source."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

import numpy as np
import pytest

from ovlabel.engine.evaluation import evaluate_rows, parse_ground_truth
from tests.engine.test_evaluation import VOCABULARY, box, coco, rows, seg


@pytest.fixture(scope="module")
def sweep_mod(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("sweep_thresholds")


def scored(label: str, level: str, sid: int, parent: Any, score: float, source: str) -> dict[str, Any]:
    return {**seg(label, level, box(0, 0, 5, 5), sid, parent), "score": score, "source": source}


def test_drops_by_source_threshold_and_takes_the_children_along(sweep_mod: ModuleType) -> None:
    segments = [scored("street", "scene", 0, None, 0.1, "caption"),       # the root: always kept
                scored("car", "object", 1, 0, 0.55, "caption"),           # below 0.6: dropped
                scored("wheel", "part", 2, 1, 0.99, "caption"),           # its part goes with it
                scored("tree", "object", 3, 0, 0.97, "vocabulary"),       # below 0.99: dropped
                scored("dog", "object", 4, 0, 0.7, "caption"),            # kept
                scored("tail", "part", 5, 4, 0.75, "lexicon"),            # kept (lexicon 0.7)
                scored("ear", "part", 6, 4, 0.65, "lexicon")]             # dropped
    kept = sweep_mod.kept_segments(segments, {"caption": 0.6, "vocabulary": 0.99, "lexicon": 0.7})
    assert [s["segment_id"] for s in kept] == [0, 4, 5]
    assert [s["segment_id"] for s in sweep_mod.kept_segments(segments, {})] == list(range(7))


def test_sweep_at_zero_is_the_plain_report_and_a_strict_one_drops_everything(sweep_mod: ModuleType) -> None:
    gt = coco()
    plain = evaluate_rows(rows(), parse_ground_truth(gt), vocabulary=VOCABULARY, coco=gt)
    loose, strict = sweep_mod.sweep(rows(), gt, {"caption": [0.0, 0.95]}, VOCABULARY)
    assert loose["thresholds"] == {"caption": 0.0} and strict["thresholds"] == {"caption": 0.95}
    for level in ("object", "part"):
        for key in ("precision", "recall"):
            assert loose[f"{level}_{key}"] == plain["levels"][level][key]
        assert strict[f"{level}_recall"] == 0.0 and strict[f"{level}_precision"] is None
    assert loose["scene"] == strict["scene"] == plain["scene"]["accuracy"]  # roots are never dropped
    assert np.isclose(loose["ap"]["object"], plain["mask_ap"]["object"]["AP"])
