"""Masks computed earlier: SA-1B-style JSON files or the label shards of a previous ovlabel run.

The expensive stage then runs once, and matching can be re-run with a new vocabulary or CLIP
model. ``masks.precomputed.format`` picks the source:

``sa1b``
    ``path`` is a folder of JSON files (searched recursively) or one JSON file, each
    ``{"image": {...}, "annotations": [{"segmentation": {"size", "counts"}, "bbox", "area",
    "predicted_iou", "stability_score", "point_coords", "crop_box"}, ...]}``. A file is found for
    an image_id by its name (``<image_id>.json``) or, failing that, by its ``image.image_id`` or
    ``image.file_name`` (with or without extension).
``shards``
    ``path`` is a run's output folder, its ``labels/`` folder or one Parquet shard (labels schema).
    Every non-root segment's mask of the image becomes a mask; identical RLEs are kept once.

The index is built lazily, once per generator instance. An image without masks, or whose masks
are not the image's size, raises :class:`InputError` (an error row upstream).
"""
from __future__ import annotations

import json
import logging
import posixpath
from collections import OrderedDict
from typing import Any, Optional, Sequence

import fsspec
import numpy as np
import pyarrow.parquet as pq

from ovlabel.engine import layout
from ovlabel.engine.masks.settings import PrecomputedConfig
from ovlabel.engine.errors import ConfigError, InputError
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.schemas import KIND_KEY

log = logging.getLogger(__name__)

ROW_GROUP_CACHE = 4  # shard row groups kept decoded (consecutive images usually share one)


def _filesystem(path: Optional[str]) -> tuple[fsspec.AbstractFileSystem, str]:
    if not path:
        raise ConfigError("masks.generator=precomputed needs masks.precomputed.path "
                          "(a folder of SA-1B JSON files or a previous run's output folder)")
    fs, root = fsspec.core.url_to_fs(path)
    if not fs.exists(root):
        raise ConfigError(f"masks.precomputed.path {path!r} does not exist; point it at the precomputed masks")
    return fs, root.rstrip("/") or "/"


def check_precomputed(cfg: PrecomputedConfig) -> None:
    """The preflight: the configured path is set and exists (raises the builder's own :class:`ConfigError`)."""
    _filesystem(cfg.path)


def _check_size(rles: Sequence[dict[str, Any]], image_size: tuple[int, int], image_id: str, where: str) -> None:
    for rle in rles:
        if tuple(int(v) for v in rle["size"]) != tuple(image_size):
            raise InputError(f"image {image_id!r}: precomputed mask size {list(rle['size'])} (h, w) from {where} "
                             f"differs from the image {list(image_size)}; were the masks computed on another "
                             f"version or resize of this image?")


def _xywh_to_xyxy(box: Sequence[float]) -> list[float]:
    x, y, w, h = box
    return [x, y, x + w, y + h]


class _Sa1bSource:
    """image_id -> SA-1B JSON file; the file-name index first, the ``image`` block index on a miss."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str) -> None:
        self.fs = fs
        self.root = root
        self._by_name: Optional[dict[str, str]] = None
        self._by_image: Optional[dict[str, str]] = None

    def _files(self) -> list[str]:
        if self.fs.isfile(self.root):
            return [self.root]
        return sorted(p for p in self.fs.find(self.root) if p.lower().endswith(".json"))

    def _name_index(self) -> dict[str, str]:
        if self._by_name is None:
            files = self._files()
            self._by_name = {posixpath.basename(p)[: -len(".json")]: p for p in files}
            log.info("precomputed sa1b: %d JSON files under %s", len(files), self.root)
        return self._by_name

    def _image_index(self) -> dict[str, str]:
        """Keys from every file's ``image`` block (reads every file once; only after a name miss)."""
        if self._by_image is None:
            self._by_image = {}
            for path in self._name_index().values():
                info = self._read(path).get("image") or {}
                for key in _image_keys(info):
                    self._by_image.setdefault(key, path)
        return self._by_image

    def _read(self, path: str) -> dict[str, Any]:
        try:
            with self.fs.open(path, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise InputError(f"precomputed masks file {path!r} cannot be read as JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"precomputed masks file {path!r} holds {type(data).__name__}, expected an object")
        return data

    def load(self, image_id: str, image_size: tuple[int, int]) -> MaskBatch:
        path = self._name_index().get(image_id) or self._image_index().get(image_id)
        if path is None:
            raise InputError(f"image {image_id!r}: no precomputed masks (no {image_id}.json and no file whose "
                             f"image.image_id or image.file_name matches) under {self.root!r}")
        anns = self._read(path).get("annotations") or []
        if not anns:
            raise InputError(f"image {image_id!r}: {path!r} has no annotations")
        return _sa1b_batch(anns, image_size, image_id, path)


def _image_keys(info: dict[str, Any]) -> list[str]:
    keys = []
    if info.get("image_id") is not None:
        keys.append(str(info["image_id"]))
    name = info.get("file_name")
    if name:
        base = posixpath.basename(str(name))
        keys.extend([base, posixpath.splitext(base)[0]])
    return keys


def _sa1b_batch(anns: Sequence[dict[str, Any]], image_size: tuple[int, int], image_id: str, path: str) -> MaskBatch:
    """SA-1B annotations -> MaskBatch (crop_box XYWH -> XYXY, first point_coords as the point)."""
    try:
        rles = [{"size": [int(v) for v in a["segmentation"]["size"]], "counts": a["segmentation"]["counts"]}
                for a in anns]
    except (KeyError, TypeError) as exc:
        raise InputError(f"image {image_id!r}: {path!r} has an annotation without segmentation size/counts "
                         f"({exc!r})") from None
    _check_size(rles, image_size, image_id, path)
    h, w = image_size
    nan = float("nan")
    points = [(a.get("point_coords") or [[nan, nan]])[0] for a in anns]
    crops = [_xywh_to_xyxy(a["crop_box"]) if a.get("crop_box") else [0, 0, w, h] for a in anns]
    return MaskBatch.from_rles(
        image_size, rles,
        predicted_iou=[_num(a.get("predicted_iou")) for a in anns],
        stability_score=[_num(a.get("stability_score")) for a in anns],
        points=np.asarray(points, np.float32).reshape(-1, 2),
        crop_boxes=np.rint(np.asarray(crops, np.float64)).astype(np.int32).reshape(-1, 4),
        source="precomputed:sa1b")


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


class _ShardSource:
    """image_id -> (shard, row group, row) over a run's label shards; row groups decoded on demand."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str) -> None:
        self.fs = fs
        self.root = root
        self._index: Optional[dict[str, list[tuple[str, int, int]]]] = None
        self._groups: OrderedDict[tuple[str, int], list[dict[str, Any]]] = OrderedDict()

    def _open(self, path: str) -> pq.ParquetFile:
        return pq.ParquetFile(self.fs.open(path, "rb"))

    def _is_labels(self, pf: pq.ParquetFile) -> bool:
        kind = (pf.schema_arrow.metadata or {}).get(KIND_KEY)
        names = set(pf.schema_arrow.names)
        return (kind in (None, layout.LABELS.encode())) and {"image_id", "segments"} <= names

    def index(self) -> dict[str, list[tuple[str, int, int]]]:
        if self._index is None:
            self._index = {}
            files = layout.find_shards(self.fs, self.root, layout.LABELS)
            for path in files:
                pf = self._open(path)
                if not self._is_labels(pf):
                    continue
                for g in range(pf.num_row_groups):
                    ids = pf.read_row_group(g, columns=["image_id"]).column("image_id").to_pylist()
                    for r, image_id in enumerate(ids):
                        self._index.setdefault(str(image_id), []).append((path, g, r))
            if not self._index:
                raise ConfigError(f"masks.precomputed.path {self.root!r} holds no ovlabel label shards "
                                  f"(*.parquet with image_id and segments); point it at a run's output folder")
            log.info("precomputed shards: %d images in %d files under %s", len(self._index), len(files), self.root)
        return self._index

    def _segments(self, path: str, group: int) -> list[Any]:
        key = (path, group)
        if key not in self._groups:
            table = self._open(path).read_row_group(group, columns=["segments"])
            self._groups[key] = table.column("segments").to_pylist()
            if len(self._groups) > ROW_GROUP_CACHE:
                self._groups.popitem(last=False)
        self._groups.move_to_end(key)
        return self._groups[key]

    def load(self, image_id: str, image_size: tuple[int, int]) -> MaskBatch:
        places = self.index().get(image_id)
        if not places:
            raise InputError(f"image {image_id!r}: not in the label shards under {self.root!r}; "
                             f"precomputed masks exist only for images of that run")
        rles, ious, stabs, seen = [], [], [], set()
        for path, group, row in places:
            for seg in self._segments(path, group)[row] or []:
                mask = seg["mask"]
                key = (tuple(mask["size"]), mask["counts"])
                if seg.get("parent_id") is None or key in seen:
                    continue
                seen.add(key)
                rles.append({"size": [int(v) for v in mask["size"]], "counts": mask["counts"]})
                ious.append(_num(seg.get("predicted_iou")))
                stabs.append(_num(seg.get("stability_score")))
        if not rles:
            raise InputError(f"image {image_id!r}: the label shards under {self.root!r} hold only its scene "
                             f"root, no masks to reuse")
        _check_size(rles, image_size, image_id, self.root)
        return MaskBatch.from_rles(image_size, rles, predicted_iou=ious, stability_score=stabs,
                                   source="precomputed:shards")


class PrecomputedMasks:
    """A :class:`MaskGenerator` that reads masks computed earlier (see the module docstring)."""

    name = "precomputed"

    def __init__(self, cfg: PrecomputedConfig) -> None:
        self.cfg = cfg
        fs, root = _filesystem(cfg.path)
        self._source: _Sa1bSource | _ShardSource = (_Sa1bSource if cfg.format == "sa1b" else _ShardSource)(fs, root)

    def generate(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[MaskBatch]:
        """One MaskBatch per (H, W, 3) image, looked up by its image_id."""
        if len(image_ids) != len(images):
            raise ValueError(f"precomputed masks need one image_id per image ({len(images)} images, "
                             f"{len(image_ids)} ids)")
        return [self._source.load(str(i), (int(im.shape[0]), int(im.shape[1]))) for im, i in zip(images, image_ids)]

    def describe(self) -> dict[str, object]:
        return {"generator": self.name, "format": self.cfg.format, "path": self.cfg.path}
