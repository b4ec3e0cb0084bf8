"""The real pipeline end to end on DirectRunner and on the portable runner, with tiny random-weight models."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ovlabel.engine import rle
from ovlabel.pipelines.pipeline import RunSummary, run
from ovlabel.schemas import validate_shard
from tests.pipelines.helpers import comparable, portable_services, read_rows, tiny_config
from tests.support import ManifestWriter, SceneImage

pytestmark = pytest.mark.slow


def _dataset(folder: Path, scene_image: SceneImage, captions: list[list[str]],
             manifest_writer: ManifestWriter) -> Path:
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    for i in range(3):
        Image.fromarray(scene_image(i, (64, 80) if i % 2 else (72, 64))).save(folder / "images" / f"img{i}.png")
        rows.append({"image": f"images/img{i}.png", "captions": captions[i], "image_id": f"img{i}"})
    (folder / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40)
    rows += [
        {"image": "images/missing.png", "caption": "A dog on a couch.", "image_id": "missing"},
        {"image": "images/corrupt.jpg", "caption": "A cat on a mat.", "image_id": "corrupt"},
        {"image": "images/img0.png", "caption": "", "image_id": "empty-caption"},
        {"caption": "A horse in a field.", "image_id": "no-image-column"},
    ]
    return manifest_writer(folder, rows)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, scene_image: SceneImage, captions: list[list[str]],
             manifest_writer: ManifestWriter) -> Path:
    return _dataset(tmp_path_factory.mktemp("e2e"), scene_image, captions, manifest_writer)


@pytest.fixture(scope="module")
def direct_run(manifest: Path) -> tuple[Path, RunSummary]:
    out = manifest.parent / "out-direct"
    return out, run(tiny_config(), str(manifest), str(out))


def test_every_input_is_a_label_or_an_error_row(direct_run: tuple[Path, RunSummary]) -> None:
    out, summary = direct_run
    labels, errors = read_rows(out, "labels"), read_rows(out, "errors")
    assert summary.input_rows == 7
    assert len(labels) + len(errors) == 7 == summary.labeled_rows + summary.error_rows
    assert sorted(r["image_id"] for r in labels) == ["img0", "img1", "img2"]
    info = json.loads((out / "run.json").read_text())
    assert info["accounting_ok"] is True
    assert info["counts"]["input_rows"] == 7
    assert info["config"]["masks"]["sam"]["model_type"] == "vit_tiny"
    assert info["versions"]["apache-beam"].startswith("2.77")


def test_bad_rows_become_readable_error_rows(direct_run: tuple[Path, RunSummary]) -> None:
    out, _ = direct_run
    errors = {r["image_id"]: r for r in read_rows(out, "errors")}
    assert (errors["missing"]["stage"], errors["missing"]["error_type"]) == ("LoadImages", "ImageLoadError")
    assert "not found" in errors["missing"]["message"]
    assert errors["corrupt"]["stage"] == "LoadImages" and "corrupt" in errors["corrupt"]["message"]
    assert errors["empty-caption"]["stage"] == "ParseCaptions"
    assert "empty" in errors["empty-caption"]["message"]
    assert errors["no-image-column"]["stage"] == "ValidateRows"
    assert "'image'" in errors["no-image-column"]["message"]
    assert json.loads(errors["missing"]["input_row"])["image"] == "images/missing.png"


def test_shards_validate_and_masks_decode_to_image_size(direct_run: tuple[Path, RunSummary]) -> None:
    out, _ = direct_run
    shards = sorted(out.glob("*/*.parquet"))
    assert {s.parent.name for s in shards} == {"labels", "errors"}
    assert sum(validate_shard(s) for s in shards) == 7
    for row in read_rows(out, "labels"):
        assert row["segments"][0]["level"] == "scene" and row["segments"][0]["parent_id"] is None
        for seg in row["segments"]:
            mask = rle.decode(seg["mask"])
            assert mask.shape == (row["height"], row["width"])
            assert int(mask.sum()) == seg["area"] > 0
        assert row["provenance"]["mask_generator"].startswith("sam:vit_tiny")


def test_no_shard_holds_more_than_rows_per_shard(direct_run: tuple[Path, RunSummary]) -> None:
    out, _ = direct_run
    counts = [validate_shard(s) for s in sorted(out.glob("*/*.parquet"))]
    assert max(counts) <= 4 and sum(counts) == 7  # output.rows_per_shard=4 in configs/tiny.yaml


def test_output_is_refused_when_not_empty(direct_run: tuple[Path, RunSummary], manifest: Path) -> None:
    from ovlabel.engine.errors import OutputError

    out, _ = direct_run
    with pytest.raises(OutputError, match="--overwrite"):
        run(tiny_config(), str(manifest), str(out))


def test_portable_runner_gives_the_same_rows(direct_run: tuple[Path, RunSummary], manifest: Path) -> None:
    out, _ = direct_run
    portable_out = manifest.parent / "out-portable"
    with portable_services() as beam_args:
        summary = run(tiny_config(), str(manifest), str(portable_out), beam_args)
    assert summary.balanced and summary.labeled_rows == 3
    for kind in ("labels", "errors"):
        assert comparable(read_rows(portable_out, kind)) == comparable(read_rows(out, kind))
    info = json.loads((portable_out / "run.json").read_text())
    assert "--runner=PortableRunner" in info["beam_args"]


def test_two_local_worker_processes_give_the_same_rows(direct_run: tuple[Path, RunSummary], manifest: Path) -> None:
    out, _ = direct_run
    parallel_out = manifest.parent / "out-two-workers"
    summary = run(tiny_config("beam.local_workers=2", "beam.local_mode=processes"), str(manifest), str(parallel_out))
    assert summary.balanced and summary.labeled_rows == 3
    for kind in ("labels", "errors"):
        assert comparable(read_rows(parallel_out, kind)) == comparable(read_rows(out, kind))
    info = json.loads((parallel_out / "run.json").read_text())
    assert "--direct_running_mode=multi_processing" in info["beam_args"]
    assert info["config"]["beam"]["masks"]["torch_threads"] >= 1


def test_two_local_worker_threads_give_the_same_rows(direct_run: tuple[Path, RunSummary], manifest: Path) -> None:
    out, _ = direct_run
    threaded_out = manifest.parent / "out-two-threads"
    summary = run(tiny_config("beam.local_workers=2"), str(manifest), str(threaded_out))
    assert summary.balanced and summary.labeled_rows == 3
    for kind in ("labels", "errors"):
        assert comparable(read_rows(threaded_out, kind)) == comparable(read_rows(out, kind))
    info = json.loads((threaded_out / "run.json").read_text())
    assert "--direct_running_mode=multi_threading" in info["beam_args"]


def test_masks_are_real_sam_output(direct_run: tuple[Path, RunSummary]) -> None:
    """Object segments carry SAM's own quality scores (not placeholders)."""
    out, _ = direct_run
    objects = [s for r in read_rows(out, "labels") for s in r["segments"] if s["level"] == "object"]
    assert objects, "tiny config thresholds should let some objects through"
    assert all(s["predicted_iou"] is not None and np.isfinite(s["predicted_iou"]) for s in objects)


def test_a_real_run_reads_back_through_export_dataset_and_preview(direct_run: tuple[Path, RunSummary],
                                                                  tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    from ovlabel.engine.coco_export import export_coco
    from ovlabel.engine.dataset import LabelsDataset
    from ovlabel.engine.gallery import write_preview

    out, _ = direct_run
    labels = read_rows(out, "labels")
    export_coco(str(out), str(tmp_path / "coco.json"), levels=("scene", "object", "part"))
    coco = COCO(str(tmp_path / "coco.json"))
    shard_masks = [s["mask"] for row in labels for s in row["segments"]]
    assert len(coco.getAnnIds()) == len(shard_masks)
    exported = {(coco.imgs[a["image_id"]]["image_key"], a["segment_id"]): coco.annToMask(a).astype(bool)
                for a in coco.dataset["annotations"]}
    for row in labels:
        for s in row["segments"]:
            assert (exported[row["image_id"], s["segment_id"]] == rle.decode(s["mask"])).all()
    data = LabelsDataset(str(out), levels=("scene", "object", "part"))
    item = data[0]
    assert tuple(item["image"].shape[1:]) == tuple(item["masks"].shape[1:]) and len(item["masks"]) >= 1
    assert write_preview(str(out), str(tmp_path / "preview"))["images"] == len(labels) == len(data)
