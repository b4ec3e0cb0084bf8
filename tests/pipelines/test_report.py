"""The table a run closes with: inputs, labelled, errors per stage and kind, segments per level, top classes, time."""
from __future__ import annotations

from ovlabel.pipelines.accounting import RunSummary
from ovlabel.pipelines.report import format_summary


def _summary(**extra: object) -> RunSummary:
    fields = dict(errors_by_kind={"LoadImages": {"ImageLoadError": 2, "ValueError": 1}, "ValidateRows": {"InputError": 1}},
                  segments_by_level={"scene": 16, "object": 40, "part": 9},
                  top_classes=[("dog", 12), ("tail", 5)], top_scenes=[("beach", 10), ("kitchen", 6)])
    return RunSummary("runs/a", 20, 16, 4, {"LoadImages": 3, "ValidateRows": 1}, 8.0, **{**fields, **extra})


def test_the_table_holds_every_count_and_the_rate() -> None:
    text = format_summary(_summary(stages={"BuildHierarchy": {"in": 16, "out": 16, "errors": 0, "skipped": 0}}))
    lines = text.splitlines()
    assert lines[0] == "ovlabel: finished in 8.0s, 2.00 images/s"
    assert lines[1].split() == ["inputs", "20"] and lines[2].split() == ["labelled", "16"]
    assert lines[3].split() == ["errors", "4"]
    assert lines[4].split() == ["LoadImages", "3", "ImageLoadError", "2,", "ValueError", "1"]
    assert lines[5].split() == ["ValidateRows", "1", "InputError", "1"]
    assert lines[6].split() == ["segments", "65", "scene", "16,", "object", "40,", "part", "9"]
    assert "dog 12, tail 5" in lines[7] and "beach 10, kitchen 6" in lines[8]
    assert lines[9] == "  shards: runs/a/labels/  errors: runs/a/errors/  run info: runs/a/run.json"


def test_a_resumed_run_says_what_it_labelled_itself_and_its_rate_counts_only_that() -> None:
    text = format_summary(_summary(stages={"BuildHierarchy": {"in": 4, "out": 4, "errors": 0, "skipped": 0}}))
    assert "0.50 images/s" in text.splitlines()[0] and "(4 by this run)" in text.splitlines()[2]


def test_an_empty_run_prints_dashes_not_blanks() -> None:
    text = format_summary(RunSummary("o", 0, 0, 0, {}, 0.0))
    assert "0.00 images/s" in text and text.count(" -") == 3
