"""The labelled stages: stage names, Beam dead letters turned into error rows, and per-stage counters."""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from ovlabel.engine.errors import ImageLoadError, InputError
from ovlabel.engine.manifest import RawRow
from ovlabel.engine.records import ErrorRecord, ImageBundle, InputRecord
from ovlabel.pipelines import stages
from ovlabel.pipelines.stages import (BUILD_HIERARCHY, DEDUPLICATE, FLOWS, GENERATE_MASKS, LOAD_IMAGES, MATCH_REGIONS,
                                      NAMESPACE, PARSE_CAPTIONS, STAGES, VALIDATE_ROWS, ShardTarget, counted,
                                      dead_letter, deduplicate, read_manifest)
from tests.support import ManifestWriter

RECORD = InputRecord("a", "/x/a.png", ("a dog",), '{"image": "a.png"}', row_index=0)


def _beam_dead_letter(exc: BaseException) -> tuple[Any, str, list[str]]:
    """What Beam's exception handling pairs a failed element with: (type, repr, formatted traceback lines)."""
    try:
        raise exc
    except BaseException:  # noqa: BLE001 - caught to format it, as Beam does
        return type(exc), repr(exc), traceback.format_exception(*sys.exc_info())


def _counters(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    totals: dict[str, int] = {}
    for counter in found:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + (counter.committed or counter.attempted)
    return totals


def _run(build: Callable[[beam.Pipeline], None]) -> dict[str, int]:
    pipeline = beam.Pipeline(runner="DirectRunner")
    build(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    return _counters(result)


def test_stage_names_are_defined_once_in_pipeline_order() -> None:
    assert STAGES == ("ValidateRows", "Deduplicate", "ParseCaptions", "LoadImages", "GenerateMasks", "MatchRegions",
                      "BuildHierarchy")
    assert STAGES == (VALIDATE_ROWS, DEDUPLICATE, PARSE_CAPTIONS, LOAD_IMAGES, GENERATE_MASKS, MATCH_REGIONS,
                      BUILD_HIERARCHY)
    assert FLOWS == ("in", "out", "errors", "skipped") and NAMESPACE == "ovlabel"


@pytest.mark.parametrize("exc, expected", [
    (InputError("row has no 'image' field"), ("InputError", "row has no 'image' field")),  # module-qualified line
    (ValueError("expected (H, W, 3) images"), ("ValueError", "expected (H, W, 3) images")),  # a builtin: bare name
    (ImageLoadError("two\nlines"), ("ImageLoadError", "two\nlines")),
    (InputError(), ("InputError", "InputError()")),  # no message on the last line: the repr
], ids=["ovlabel", "builtin", "multiline", "no-message"])
def test_the_message_is_the_exceptions_own_text(exc: Exception, expected: tuple[str, str]) -> None:
    assert stages._exception_text(_beam_dead_letter(exc)) == expected


def test_without_a_usable_traceback_the_repr_is_the_message() -> None:
    assert stages._exception_text((KeyError, "KeyError('x')", [])) == ("KeyError", "KeyError('x')")
    assert stages._exception_text((KeyError, "KeyError('x')", ["Traceback ...\n", "something else\n"])) == (
        "KeyError", "KeyError('x')")
    assert stages._exception_text(("NotAType", "boom", [])) == ("NotAType", "boom")


def test_a_failed_record_or_bundle_becomes_an_error_row_naming_its_input() -> None:
    info = _beam_dead_letter(ImageLoadError("image not found"))
    expected = ErrorRecord("a", "/x/a.png", LOAD_IMAGES, "ImageLoadError", "image not found", RECORD.raw,
                           RECORD.row_index)
    assert dead_letter(LOAD_IMAGES, RECORD, info) == expected
    assert dead_letter(LOAD_IMAGES, ImageBundle(RECORD), info) == expected


def test_a_failed_raw_row_keeps_what_it_can_read_of_its_id_and_image() -> None:
    info = _beam_dead_letter(InputError("bad row"))
    row = RawRow(2, '{"image_id": 7, "image": "b.png"}', {"image_id": 7, "image": "b.png"})
    assert dead_letter(VALIDATE_ROWS, row, info) == ErrorRecord("7", "b.png", VALIDATE_ROWS, "InputError", "bad row",
                                                                row.text, row.index)
    odd = RawRow(3, '{"image": 5}', {"image": 5})
    assert dead_letter(VALIDATE_ROWS, odd, info) == ErrorRecord(None, None, VALIDATE_ROWS, "InputError", "bad row",
                                                                odd.text, 3)
    unparsed = RawRow(4, '{"image": ', None, "unparseable JSON line")
    assert dead_letter(VALIDATE_ROWS, unparsed, info) == ErrorRecord(None, None, VALIDATE_ROWS, "InputError",
                                                                     "bad row", unparsed.text, 4)


def test_anything_else_is_kept_as_its_repr_cut_to_10000_characters() -> None:
    info = _beam_dead_letter(ValueError("odd"))
    error = dead_letter(MATCH_REGIONS, "x" * 20_000, info)
    assert (error.image_id, error.image_uri, error.stage, error.error_type) == (None, None, MATCH_REGIONS, "ValueError")
    assert error.input_row == repr("x" * 20_000)[:10_000] and len(error.input_row) == 10_000


def test_counted_passes_elements_through_and_counts_them() -> None:
    def build(pipeline: beam.Pipeline) -> None:
        out = counted(pipeline | beam.Create([1, 2, 3]), GENERATE_MASKS, "in")
        assert out.producer.full_label == "GenerateMasksCountIn"
        assert_that(out, equal_to([1, 2, 3]))

    assert _run(build) == {"GenerateMasks.in": 3}


def test_manifest_rows_become_records_or_error_rows_of_their_stage(tmp_path: Path,
                                                                   manifest_writer: ManifestWriter) -> None:
    rows: list[dict[str, Any]] = [
        {"image": "a.png", "caption": "A dog.", "image_id": "a"},
        {"image": "b.png", "caption": "A cat.", "image_id": 7},
        {"image": 5, "caption": "A cat.", "image_id": 9},
        {"image": "c.png", "caption": "A bird.", "image_id": "a"},
    ]
    manifest = manifest_writer(tmp_path, rows)
    with manifest.open("a") as fh:
        fh.write('{"image": \n')
    no_image = "row has no 'image' field (a path or URI string); add one"

    def check_errors(errors: list[ErrorRecord]) -> None:
        by_row = {e.input_row: e for e in errors}
        assert len(errors) == len(by_row) == 3
        assert by_row[json.dumps(rows[2])] == ErrorRecord("9", None, VALIDATE_ROWS, "InputError", no_image,
                                                          json.dumps(rows[2]), 2)
        assert by_row[json.dumps(rows[3])] == ErrorRecord(
            "a", str(tmp_path / "c.png"), DEDUPLICATE, "DuplicateImageId",
            "image_id 'a' is already used by manifest row 0; give every row a unique image_id", json.dumps(rows[3]), 3)
        unparsed = by_row['{"image": ']
        assert (unparsed.image_id, unparsed.image_uri, unparsed.stage, unparsed.error_type) == (
            None, None, VALIDATE_ROWS, "InputError")
        assert unparsed.message.startswith("unparseable JSON line (Expecting value at column")

    def build(pipeline: beam.Pipeline) -> None:
        records, invalid = read_manifest(pipeline, str(manifest), str(tmp_path))
        unique, duplicates = deduplicate(records)
        assert_that(unique | beam.Map(lambda r: (r.image_id, r.row_index)), equal_to([("a", 0), ("7", 1)]),
                    label="Unique")
        assert_that((invalid, duplicates) | beam.Flatten(), check_errors, label="Errors")

    assert _run(build) == {"ValidateRows.in": 5, "ValidateRows.out": 3, "ValidateRows.errors": 2,
                           "Deduplicate.in": 3, "Deduplicate.out": 2, "Deduplicate.errors": 1}


def test_the_accelerator_hint_goes_on_the_mask_stage_alone() -> None:
    """What Dataflow's right fitting reads: the mask stage's RunInference steps ask for the GPU, no other step."""
    from ovlabel.pipelines.pipeline import build_pipeline
    from tests.pipelines.helpers import tiny_config

    hint = "type:nvidia-l4;count:1;install-nvidia-driver"
    cfg = tiny_config(f"beam.masks.accelerator={hint}")
    p = beam.Pipeline()
    build_pipeline(p, cfg, "/nowhere/m.jsonl", ShardTarget("/nowhere/out", (), "r", cfg.output.policy))
    proto = p.to_runner_api()
    hinted = {key for key, env in proto.components.environments.items()
              if env.resource_hints.get("beam:resources:accelerator:v1") == hint.encode()}
    steps = [t.unique_name for t in proto.components.transforms.values() if t.environment_id in hinted]
    assert "GenerateMasks/BeamML_RunInference" in steps
    assert all(name.split("/")[0] == GENERATE_MASKS for name in steps), steps
