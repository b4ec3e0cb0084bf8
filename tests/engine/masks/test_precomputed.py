"""PrecomputedMasks: SA-1B JSON and previous-run label shards."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks import MasksConfig
from ovlabel.engine.masks.settings import PrecomputedConfig
from ovlabel.engine.errors import ConfigError, InputError
from ovlabel.engine.masks import build_mask_generator
from ovlabel.engine.masks.base import MaskGenerator
from ovlabel.engine.masks.precomputed import PrecomputedMasks
from ovlabel.schemas import LABELS_SCHEMA

H, W = 24, 32


def _box_mask(y0: int, x0: int, y1: int, x1: int, size: tuple[int, int] = (H, W)) -> np.ndarray:
    m = np.zeros(size, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _sa1b_annotation(mask: np.ndarray, iou: float) -> dict[str, Any]:
    rle = rle_utils.encode(mask)
    return {"segmentation": rle, "bbox": list(rle_utils.bbox_xywh(rle)), "area": int(mask.sum()),
            "predicted_iou": iou, "stability_score": 0.97, "point_coords": [[5.0, 6.0]], "crop_box": [0, 0, W, H]}


def _write_sa1b(folder: Path, name: str, image_info: dict[str, Any], masks: list[np.ndarray]) -> None:
    anns = [_sa1b_annotation(m, 0.9 - 0.1 * i) for i, m in enumerate(masks)]
    (folder / f"{name}.json").write_text(json.dumps({"image": image_info, "annotations": anns}))


def _image(size: tuple[int, int] = (H, W)) -> np.ndarray:
    return np.zeros((*size, 3), dtype=np.uint8)


@pytest.fixture()
def sa1b_dir(tmp_path: Path) -> Path:
    _write_sa1b(tmp_path, "img1", {"image_id": 1, "file_name": "img1.jpg", "height": H, "width": W},
                [_box_mask(0, 0, 10, 10), _box_mask(5, 5, 20, 30)])
    sub = tmp_path / "nested"
    sub.mkdir()
    _write_sa1b(sub, "sa_77", {"image_id": 77, "file_name": "photo_77.jpg", "height": H, "width": W},
                [_box_mask(2, 2, 8, 8)])
    _write_sa1b(tmp_path, "empty", {"image_id": 5}, [])
    _write_sa1b(tmp_path, "big", {"image_id": 6}, [_box_mask(0, 0, 4, 4, size=(48, 64))])
    return tmp_path


def _gen(path: Path, fmt: str) -> PrecomputedMasks:
    return PrecomputedMasks(PrecomputedConfig(path=str(path), format=fmt))


def test_sa1b_by_file_name(sa1b_dir: Path) -> None:
    gen = _gen(sa1b_dir, "sa1b")
    assert isinstance(gen, MaskGenerator)
    (batch,) = gen.generate([_image()], ["img1"])
    assert len(batch) == 2 and batch.image_size == (H, W)
    np.testing.assert_array_equal(batch.decode(0), _box_mask(0, 0, 10, 10))
    np.testing.assert_allclose(batch.predicted_iou, [0.9, 0.8], rtol=1e-6)
    np.testing.assert_allclose(batch.stability_score, [0.97, 0.97], rtol=1e-6)
    np.testing.assert_allclose(batch.points, [[5, 6], [5, 6]])
    np.testing.assert_array_equal(batch.crop_boxes, [[0, 0, W, H]] * 2)
    assert batch.areas.tolist() == [100, 375]
    assert batch.source == "precomputed:sa1b"


@pytest.mark.parametrize("image_id", ["77", "photo_77.jpg", "photo_77", "sa_77"])
def test_sa1b_by_image_block(sa1b_dir: Path, image_id: str) -> None:
    (batch,) = _gen(sa1b_dir, "sa1b").generate([_image()], [image_id])
    np.testing.assert_array_equal(batch.decode_all(), _box_mask(2, 2, 8, 8)[None])


def test_sa1b_single_file(sa1b_dir: Path) -> None:
    (batch,) = _gen(sa1b_dir / "img1.json", "sa1b").generate([_image()], ["1"])
    assert len(batch) == 2


@pytest.mark.parametrize("image_id, message", [("nope", "no precomputed masks"), ("empty", "no annotations"),
                                               ("big", "differs from the image")])
def test_sa1b_input_errors(sa1b_dir: Path, image_id: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _gen(sa1b_dir, "sa1b").generate([_image()], [image_id])


def test_sa1b_index_built_once(sa1b_dir: Path) -> None:
    gen = _gen(sa1b_dir, "sa1b")
    gen.generate([_image()], ["img1"])
    _write_sa1b(sa1b_dir, "late", {"image_id": 8}, [_box_mask(0, 0, 4, 4)])  # not seen: indexed once
    with pytest.raises(InputError, match="no precomputed masks"):
        gen.generate([_image()], ["late"])
    assert len(_gen(sa1b_dir, "sa1b").generate([_image()], ["late"])[0]) == 1


def _segment(seg_id: int, parent: int | None, level: str, mask: np.ndarray) -> dict[str, Any]:
    rle = rle_utils.encode(mask)
    return {"segment_id": seg_id, "parent_id": parent, "level": level, "label": f"l{seg_id}", "class_name": f"l{seg_id}", "phrase": None,
            "caption_index": None, "char_span": None, "score": 0.5, "clip_similarity": 0.3,
            "source": "image" if parent is None else "caption", "mask": rle,
            "bbox_xywh": list(rle_utils.bbox_xywh(rle)), "area": int(mask.sum()),
            "predicted_iou": None if parent is None else 0.8, "stability_score": None}


def _labels_row(image_id: str, segments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"image_id": image_id, "image_uri": f"file:///{image_id}.jpg", "width": W, "height": H,
            "captions": ["a cat"], "scene": "room", "segments": segments,
            "provenance": {"pipeline_version": "0", "schema_version": "1", "mask_generator": "sam",
                           "clip_model": "x", "run_id": "r"}, "row_index": 0, "row_hash": "0"}


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    root, cat, ear = np.ones((H, W), bool), _box_mask(4, 4, 20, 20), _box_mask(4, 4, 8, 8)
    rows = [
        _labels_row("a", [_segment(0, None, "scene", root), _segment(1, 0, "object", cat),
                          _segment(2, 1, "part", ear), _segment(3, 0, "object", cat)]),  # cat twice: one mask
        _labels_row("only_root", [_segment(0, None, "scene", root)]),
    ]
    labels = tmp_path / "labels"
    labels.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=LABELS_SCHEMA), labels / "labels-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist([_labels_row("b", [_segment(0, None, "scene", root),
                                                           _segment(1, 0, "object", ear)])], schema=LABELS_SCHEMA),
                   labels / "labels-00001-of-00002.parquet")
    return tmp_path


@pytest.mark.parametrize("sub", ["", "labels"])
def test_shards(run_dir: Path, sub: str) -> None:
    gen = _gen(run_dir / sub, "shards")
    a, b = gen.generate([_image(), _image()], ["a", "b"])
    assert len(a) == 2 and a.source == "precomputed:shards"
    np.testing.assert_array_equal(a.decode_all(), np.stack([_box_mask(4, 4, 20, 20), _box_mask(4, 4, 8, 8)]))
    np.testing.assert_allclose(a.predicted_iou, [0.8, 0.8], rtol=1e-6)
    assert np.isnan(a.stability_score).all() and np.isnan(a.points).all()
    np.testing.assert_array_equal(b.decode_all(), _box_mask(4, 4, 8, 8)[None])


@pytest.mark.parametrize("image_id, size, message", [("missing", (H, W), "not in the label shards"),
                                                     ("only_root", (H, W), "only its scene root"),
                                                     ("a", (H + 1, W), "differs from the image")])
def test_shards_input_errors(run_dir: Path, image_id: str, size: tuple[int, int], message: str) -> None:
    with pytest.raises(InputError, match=message):
        _gen(run_dir, "shards").generate([_image(size)], [image_id])


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs masks.precomputed.path"):
        PrecomputedMasks(PrecomputedConfig())
    with pytest.raises(ConfigError, match="does not exist"):
        _gen(tmp_path / "absent", "sa1b")
    with pytest.raises(ConfigError, match="no ovlabel label shards"):
        _gen(tmp_path, "shards").generate([_image()], ["a"])


def test_registry_builds_precomputed(sa1b_dir: Path) -> None:
    cfg = MasksConfig(generator="precomputed", precomputed=PrecomputedConfig(path=str(sa1b_dir)))
    gen = build_mask_generator(cfg)
    assert gen.name == "precomputed"
    assert gen.describe() == {"generator": "precomputed", "format": "sa1b", "path": str(sa1b_dir)}
