"""PyTorch datasets over a run's labels shards: train a segmenter on the pseudo-labels.

:class:`LabelsDataset` (map-style, one item per labels row) and :class:`LabelsStream` (iterable: streams
the shards row group by row group, split across DataLoader workers and, with ``rank``/``world_size``,
across processes) read a run's output folder, its labels/ folder or one shard, local or any fsspec URI.
An item is a dict::

    image      uint8 (3, H, W), read from the row's image_uri
    masks      bool (N, H, W), the segments of ``levels`` (default objects and parts), in tree order
    class_ids  int64 (N,), from the run's classes.json, else the sorted class names numbered from 1
    levels     int64 (N,), LEVEL_CODES: 0 scene, 1 object, 2 part
    parents    int64 (N,), the index in this item of each segment's parent, -1 when it has none here
    scores     float32 (N,)
    image_id, class_names (N strings), segment_ids int64 (N,)

``transform(item) -> item`` runs last (resize, crop, augment). Items differ in N and, across images,
in size: batch them with :func:`collate` (images stacked where they share a size, the rest as lists).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.errors import LabelsError
from ovlabel.engine.labelset import (
    LEVEL_CODES,
    ClassIndex,
    LabelRun,
    RowGroup,
    load_row_image,
    open_run,
    segment_class,
)

Item = dict[str, Any]
Transform = Callable[[Item], Item]
DEFAULT_LEVELS = ("object", "part")
ROW_COLUMNS = ["image_id", "image_uri", "width", "height", "segments"]


def row_item(row: Mapping[str, Any], classes: ClassIndex, levels: Sequence[str] = DEFAULT_LEVELS) -> Item:
    """The training item of one labels row (see the module docstring), before any transform."""
    image = load_row_image(row)
    segments = [s for s in row["segments"] if s["level"] in levels]
    h, w = int(row["height"]), int(row["width"])
    masks = np.zeros((len(segments), h, w), bool)
    for k, s in enumerate(segments):
        masks[k] = rle_utils.decode(s["mask"])
    position = {int(s["segment_id"]): k for k, s in enumerate(segments)}
    names = [segment_class(s) for s in segments]
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
        "masks": torch.from_numpy(masks),
        "class_ids": torch.tensor([classes.id_of(n) for n in names], dtype=torch.int64),
        "levels": torch.tensor([LEVEL_CODES[s["level"]] for s in segments], dtype=torch.int64),
        "parents": torch.tensor([position.get(s["parent_id"], -1) if s["parent_id"] is not None else -1
                                 for s in segments], dtype=torch.int64),
        "scores": torch.tensor([float(s["score"]) for s in segments], dtype=torch.float32),
        "segment_ids": torch.tensor([int(s["segment_id"]) for s in segments], dtype=torch.int64),
        "class_names": names,
        "image_id": str(row["image_id"]),
    }


class _Reader:
    """What both datasets share: the run, its classes, the levels and the transform."""

    def __init__(self, source: str | LabelRun, levels: Sequence[str], transform: Optional[Transform],
                 classes: Optional[ClassIndex]) -> None:
        unknown = sorted(set(levels) - set(LEVEL_CODES))
        if unknown or not levels:
            raise LabelsError(f"levels {list(levels)}: use some of {', '.join(LEVEL_CODES)}")
        self.run = source if isinstance(source, LabelRun) else open_run(source)
        self.classes = classes or self.run.classes()
        self.levels = tuple(levels)
        self.transform = transform

    def item(self, row: Mapping[str, Any]) -> Item:
        out = row_item(row, self.classes, self.levels)
        return self.transform(out) if self.transform else out


class LabelsDataset(Dataset, _Reader):
    """Map-style: item ``i`` is the ``i``-th labels row of the run (shard order). Rows are read a row group at a
    time (the last one is kept), so only the index of row groups is held in memory."""

    def __init__(self, source: str | LabelRun, levels: Sequence[str] = DEFAULT_LEVELS,
                 transform: Optional[Transform] = None, classes: Optional[ClassIndex] = None) -> None:
        _Reader.__init__(self, source, levels, transform, classes)
        self._starts = np.cumsum([0] + [g.rows for g in self.run.groups])
        self._cached: tuple[Optional[RowGroup], list[dict[str, Any]]] = (None, [])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def row(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"row {index} of a run of {len(self)} rows")
        index %= len(self)
        k = int(np.searchsorted(self._starts, index, side="right")) - 1
        group = self.run.groups[k]
        if self._cached[0] != group:
            self._cached = (group, self.run.read_group(group, ROW_COLUMNS))
        return self._cached[1][index - int(self._starts[k])]

    def __getitem__(self, index: int) -> Item:
        return self.item(self.row(index))


def split_rows(total: int, part: int, parts: int) -> tuple[int, int]:
    """[start, end) of the ``part``-th of ``parts`` near-equal contiguous slices of ``total`` rows."""
    return total * part // parts, total * (part + 1) // parts


class LabelsStream(IterableDataset, _Reader):
    """Iterable: the run's rows in shard order, each DataLoader worker (of each of ``world_size`` processes)
    reading its own contiguous slice of them, so every row comes once per epoch."""

    def __init__(self, source: str | LabelRun, levels: Sequence[str] = DEFAULT_LEVELS,
                 transform: Optional[Transform] = None, classes: Optional[ClassIndex] = None, rank: int = 0,
                 world_size: int = 1) -> None:
        _Reader.__init__(self, source, levels, transform, classes)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return self.run.num_rows

    def _slice(self) -> tuple[int, int]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        return split_rows(self.run.num_rows, self.rank * workers + worker, self.world_size * workers)

    def __iter__(self) -> Iterator[Item]:
        start, end = self._slice()
        offset = 0
        for group in self.run.groups:
            lo, hi = max(start, offset), min(end, offset + group.rows)
            if lo < hi:
                for row in self.run.read_group(group, ROW_COLUMNS)[lo - offset:hi - offset]:
                    yield self.item(row)
            offset += group.rows


def collate(items: Sequence[Item]) -> dict[str, Any]:
    """A batch of items: ``image`` stacked to (B, 3, H, W) when the images share a size (a list otherwise), every
    other key a list of B (the number of segments differs from image to image)."""
    out: dict[str, Any] = {key: [item[key] for item in items] for key in items[0]}
    images = out.get("image")
    if images and all(isinstance(v, torch.Tensor) for v in images) and len({v.shape for v in images}) == 1:
        out["image"] = torch.stack(images)
    return out


__all__ = ["DEFAULT_LEVELS", "LabelsDataset", "LabelsStream", "collate", "row_item", "split_rows"]
