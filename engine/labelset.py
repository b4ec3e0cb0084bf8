"""A run's labels as readers see them: its shards (checked), the class of each segment, and class ids.

The COCO export, ``ovlabel eval``, the training reader (:mod:`ovlabel.engine.dataset`) and the preview all
read runs through :func:`open_run`, so they refuse the same bad input with the same messages: a location
with no labels shards or no rows, a shard of a schema version this reader does not know, an image that
is gone (:func:`load_row_image`).

A segment's class is :func:`segment_class`: its canonical ``class_name`` (schema version 3) or, in
version 2 shards that have none, its caption word ``label``. Class ids come from the run's
``classes.json`` when it has one (beside the shards: in the run folder or its ``labels/`` folder),
else from the sorted class names of the run, numbered from 1 (COCO's convention; 0 stays free for
background).
"""
from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

import fsspec
import numpy as np

from ovlabel.engine import layout
from ovlabel.engine.errors import ImageLoadError, LabelsError
from ovlabel.schemas import KIND_KEY, SCHEMA_VERSION, VERSION_KEY

log = logging.getLogger(__name__)

CLASSES_FILE = "classes.json"  # written beside the shards by runs that map labels to classes
# 2: caption words only; 3: segments carry the canonical class_name as well
READABLE_VERSIONS = frozenset({"2", "3", SCHEMA_VERSION})
LEVEL_CODES = {"scene": 0, "object": 1, "part": 2}  # the `levels` tensor of the training reader
ImageRow = Mapping[str, Any]


def segment_class(segment: Mapping[str, Any]) -> str:
    """The class a segment counts as: its ``class_name`` when the shard has one, else its caption word."""
    return str(segment.get("class_name") or segment["label"])


@dataclass(frozen=True)
class ClassIndex:
    """Class name -> integer id; ``origin`` says where the ids came from (a classes.json, or the names)."""

    ids: Mapping[str, int]
    origin: str

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "ClassIndex":
        return cls({name: k for k, name in enumerate(sorted(set(names)), start=1)}, "sorted class names")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: str) -> "ClassIndex":
        try:
            ids = {str(c["name"]): int(c["id"]) for c in data["classes"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise LabelsError(f"{path!r} is not a classes file ({type(exc).__name__}: {exc}); it needs "
                              f'{{"classes": [{{"id": 1, "name": "dog"}}, ...]}}: fix or delete it') from None
        return cls(ids, path)

    def id_of(self, name: str) -> int:
        found = self.ids.get(name)
        if found is None:
            raise LabelsError(f"class {name!r} is not in {self.origin}; the classes file does not belong to "
                              f"these shards: delete it or rerun")
        return found

    def with_names(self, names: Iterable[str]) -> "ClassIndex":
        """This index, with ids after the largest for ``names`` it lacks (a warning says which)."""
        extra = sorted(set(names) - set(self.ids))
        if not extra:
            return self
        log.warning("%d classes are not in %s (%s...): numbered after its largest id", len(extra), self.origin,
                    ", ".join(extra[:5]))
        top = max(self.ids.values(), default=0)
        return ClassIndex({**self.ids, **{n: top + k for k, n in enumerate(extra, start=1)}}, self.origin)

    def names(self) -> list[str]:
        """Class names in id order."""
        return sorted(self.ids, key=lambda n: (self.ids[n], n))


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of a shard: the unit shards are read (and split across workers) by."""

    path: str
    index: int
    rows: int


@dataclass(frozen=True)
class LabelRun:
    """The labels shards at a location (checked by :func:`open_run`); picklable, so DataLoader workers get it."""

    fs: fsspec.AbstractFileSystem
    location: str
    path: str
    files: tuple[str, ...]
    groups: tuple[RowGroup, ...]

    @property
    def num_rows(self) -> int:
        return sum(g.rows for g in self.groups)

    def rows(self, columns: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
        """Every row (``columns`` only when given), in shard order."""
        return layout.read_rows(self.fs, self.files, columns)

    def read_group(self, group: RowGroup, columns: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        with self.fs.open(group.path, "rb") as fh:
            table = pq.ParquetFile(fh).read_row_group(group.index, columns=None if columns is None else list(columns))
        return table.to_pylist()

    def classes(self) -> ClassIndex:
        """Class ids: the run's classes.json (classes it lacks numbered after it), else the sorted class names."""
        found = find_classes_file(self.fs, self.path)
        names = self.class_names()
        if found is None:
            return ClassIndex.from_names(names)
        try:
            with self.fs.open(found, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise LabelsError(f"{found!r} cannot be read as JSON ({exc}); fix or delete it") from None
        return ClassIndex.from_json(data, found).with_names(names)

    def class_names(self) -> set[str]:
        """The classes of every segment of the run (reads only the label columns)."""
        import pyarrow.parquet as pq

        names: set[str] = set()
        for path in self.files:
            with self.fs.open(path, "rb") as fh:
                shard = pq.ParquetFile(fh)
                fields = shard.schema_arrow.field("segments").type.value_type
                wanted = [n for n in ("label", "class_name") if fields.get_field_index(n) >= 0]
                table = shard.read(columns=[f"segments.list.element.{n}" for n in wanted])
            for row in table.column("segments").to_pylist():
                names.update(segment_class(s) for s in row or [])
        return names


def find_classes_file(fs: fsspec.AbstractFileSystem, path: str) -> Optional[str]:
    """The classes.json beside the shards at ``path`` (a run folder, its labels/ folder or a shard), or None."""
    folder = posixpath.dirname(path) if path.endswith(layout.SHARD_SUFFIX) else path
    for candidate in (folder, posixpath.join(folder, layout.LABELS), posixpath.dirname(folder)):
        name = posixpath.join(candidate, CLASSES_FILE)
        if fs.isfile(name):
            return name
    return None


def _groups_of(fs: fsspec.AbstractFileSystem, path: str) -> list[RowGroup]:
    """The row groups of one shard, after checking it is a labels shard of a version this reader knows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with fs.open(path, "rb") as fh:
            meta = pq.ParquetFile(fh).metadata
    except (pa.ArrowException, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise LabelsError(f"shard {path!r} cannot be read ({reason}); it is truncated or not Parquet: delete it and "
                          f"rerun the run with --resume") from None
    tags = meta.schema.to_arrow_schema().metadata or {}
    version, kind = tags.get(VERSION_KEY, b"").decode(), tags.get(KIND_KEY, b"").decode()
    if kind != layout.LABELS or version not in READABLE_VERSIONS:
        what = f"schema version {version!r}" if version else "no ovlabel schema version"
        raise LabelsError(f"shard {path!r} has {what} (kind {kind or 'unknown'!r}); this ovlabel reads labels shards "
                          f"of version {', '.join(sorted(READABLE_VERSIONS))}: relabel with this version or read it "
                          f"with the ovlabel that wrote it")
    return [RowGroup(path, k, meta.row_group(k).num_rows) for k in range(meta.num_row_groups)]


def open_run(location: str) -> LabelRun:
    """The labels shards at ``location`` (a run's output folder, its labels/ folder or one shard; local or fsspec),
    each checked; :class:`LabelsError` when there are none, they hold no rows, or one is of an unknown version."""
    fs, path = layout.open_location(location)
    files = layout.find_shards(fs, path, layout.LABELS)
    if not files:
        errors = layout.find_shards(fs, path, layout.ERRORS) if fs.isdir(path) else []
        why = f" (its {len(errors)} errors shards say why no image was labelled)" if errors else ""
        raise LabelsError(f"no labels shards (*{layout.SHARD_SUFFIX}) in {location!r} or its {layout.LABELS}/ "
                          f"folder{why}; pass a run's --output folder")
    groups = tuple(g for f in files for g in _groups_of(fs, f))
    run = LabelRun(fs, location, path, tuple(files), groups)
    if run.num_rows == 0:
        raise LabelsError(f"the labels shards in {location!r} hold no rows: the run labelled no image")
    return run


def load_row_image(row: ImageRow) -> np.ndarray:
    """The (H, W, 3) uint8 image of a labels row, read from its ``image_uri``; a missing, unreadable or resized
    image is a :class:`LabelsError` naming the file."""
    from ovlabel.engine.images import decode_image, read_bytes

    uri = str(row["image_uri"])
    try:
        image = decode_image(read_bytes(uri), uri)
    except ImageLoadError as exc:
        raise LabelsError(f"image {row['image_id']!r} of the labels cannot be loaded: {exc} (the labels point at "
                          f"image_uri; move the image back or relabel)") from None
    if image.shape[:2] != (row["height"], row["width"]):
        raise LabelsError(f"image {uri!r} is {image.shape[1]}x{image.shape[0]} but was labelled at "
                          f"{row['width']}x{row['height']}: it changed since the run; relabel it")
    return image


def level_list(text: str, allowed: Sequence[str] = tuple(LEVEL_CODES)) -> tuple[str, ...]:
    """'object,part' -> ('object', 'part'), each checked against ``allowed``."""
    levels = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    bad = [lv for lv in levels if lv not in allowed]
    if bad or not levels:
        raise LabelsError(f"levels {text!r}: use a comma-separated list of {', '.join(allowed)}")
    return levels


__all__ = ["CLASSES_FILE", "ClassIndex", "LEVEL_CODES", "LabelRun", "READABLE_VERSIONS", "RowGroup",
           "find_classes_file", "level_list", "load_row_image", "open_run", "segment_class"]
