"""Reading a run back: shards checked by version, a segment's class, class ids, images, clear errors."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ovlabel.engine.errors import LabelsError
from ovlabel.engine.labelset import (
    CLASSES_FILE,
    ClassIndex,
    level_list,
    load_row_image,
    open_run,
    segment_class,
)
from ovlabel.schemas import ERRORS_SCHEMA
from tests.engine.label_runs import classes_v2, classes_v3, draw_image, labels_rows, schema, write_labels_run


def test_a_segment_is_its_class_name_else_its_caption_word() -> None:
    assert segment_class({"label": "puppy", "class_name": "dog"}) == "dog"
    assert segment_class({"label": "puppy", "class_name": None}) == "puppy"
    assert segment_class({"label": "puppy"}) == "puppy"


@pytest.mark.parametrize("version, names", [("2", classes_v2()), ("3", classes_v3())])
def test_without_classes_json_ids_are_the_sorted_names_from_1(tmp_path: Path, version: str, names: set[str]) -> None:
    run = open_run(str(write_labels_run(tmp_path, version)))
    assert run.num_rows == 5 and [g.rows for g in run.groups] == [2, 2, 1]
    classes = run.classes()
    assert classes.ids == {n: k for k, n in enumerate(sorted(names), start=1)}
    assert classes.origin == "sorted class names"


def test_classes_json_gives_the_ids_and_missing_classes_follow_it(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    listed = {n: 10 * k for k, n in enumerate(sorted(classes_v3() - {"wheel"}))}
    out = write_labels_run(tmp_path, "3", classes=listed)
    with caplog.at_level(logging.WARNING):
        classes = open_run(str(out)).classes()
    assert {n: classes.ids[n] for n in listed} == listed
    assert classes.ids["wheel"] == max(listed.values()) + 1 and "wheel" in caplog.text
    assert classes.origin.endswith(CLASSES_FILE)
    # the same file is found from the labels/ folder, from one shard, and when it lies in labels/
    assert open_run(str(out / "labels")).classes().ids == classes.ids
    assert open_run(str(out / "labels" / "part-00000.parquet")).classes().ids == classes.ids
    shutil.move(str(out / CLASSES_FILE), str(out / "labels" / CLASSES_FILE))
    assert open_run(str(out)).classes().ids == classes.ids


def test_a_bad_classes_file_is_named(tmp_path: Path) -> None:
    out = write_labels_run(tmp_path, "3")
    (out / CLASSES_FILE).write_text('{"classes": [{"name": "dog"}]}')
    with pytest.raises(LabelsError, match=f"{CLASSES_FILE}.*is not a classes file"):
        open_run(str(out)).classes()
    (out / CLASSES_FILE).write_text("{")
    with pytest.raises(LabelsError, match="cannot be read as JSON"):
        open_run(str(out)).classes()


def test_class_index_lookup_and_order() -> None:
    classes = ClassIndex.from_names(["b", "a", "b"])
    assert classes.ids == {"a": 1, "b": 2} and classes.names() == ["a", "b"]
    with pytest.raises(LabelsError, match="'c' is not in sorted class names"):
        classes.id_of("c")


def test_an_empty_run_is_refused_naming_the_folder(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    with pytest.raises(LabelsError, match=f"no labels shards .* in '{tmp_path}'"):
        open_run(str(tmp_path))
    (tmp_path / "errors").mkdir()
    pq.write_table(pa.Table.from_pylist([], schema=ERRORS_SCHEMA), tmp_path / "errors" / "e.parquet")
    with pytest.raises(LabelsError, match="its 1 errors shards say why"):
        open_run(str(tmp_path))


def test_shards_without_rows_are_an_empty_run(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    pq.write_table(pa.Table.from_pylist([], schema=schema("2")), tmp_path / "labels" / "part-0.parquet")
    with pytest.raises(LabelsError, match="hold no rows"):
        open_run(str(tmp_path))


@pytest.mark.parametrize("version", ["1", "99"])
def test_a_shard_of_another_schema_version_is_named(tmp_path: Path, version: str) -> None:
    out = write_labels_run(tmp_path, "2")
    other = out / "labels" / "part-00001.parquet"
    pq.write_table(pa.Table.from_pylist(labels_rows(tmp_path, "2", 1), schema=schema(version)), other)
    with pytest.raises(LabelsError, match=f"shard '{other}' has schema version '{version}'.*reads labels shards of "
                                          f"version 2, 3"):
        open_run(str(out))


def test_a_parquet_file_that_is_not_an_ovlabel_shard_is_named(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "labels" / "x.parquet")
    with pytest.raises(LabelsError, match="x.parquet' has no ovlabel schema version"):
        open_run(str(tmp_path))
    (tmp_path / "labels" / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(LabelsError, match="x.parquet' cannot be read"):
        open_run(str(tmp_path))


def test_row_images_load_and_a_missing_or_changed_one_is_named(tmp_path: Path) -> None:
    write_labels_run(tmp_path, "2")
    row = labels_rows(tmp_path, "2", 1)[0]
    assert (load_row_image(row) == draw_image(0)).all()
    Image.fromarray(draw_image(0)[:20]).save(row["image_uri"])
    with pytest.raises(LabelsError, match="is 64x20 but was labelled at 64x48"):
        load_row_image(row)
    Path(row["image_uri"]).unlink()
    with pytest.raises(LabelsError, match=f"image 'img0'.*image file not found: '{row['image_uri']}'"):
        load_row_image(row)


def test_level_lists() -> None:
    assert level_list("object, part,object") == ("object", "part")
    with pytest.raises(LabelsError, match="comma-separated list of scene, object, part"):
        level_list("objects")
    with pytest.raises(LabelsError):
        level_list("")


def test_classes_json_ids_may_start_at_0_and_extra_keys_are_ignored(tmp_path: Path) -> None:
    out = write_labels_run(tmp_path, "3")
    data = {"classes": [{"id": 0, "name": "car", "counts": {"object": 2}}], "unmapped": {}}
    (out / CLASSES_FILE).write_text(json.dumps(data))
    classes = open_run(str(out)).classes()
    assert classes.ids["car"] == 0 and classes.ids["dog"] == 1  # the rest numbered after the largest id
