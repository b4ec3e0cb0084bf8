"""The output folder: what is in it, reading its rows back, its marker, run.json.

Its layout is :mod:`ovlabel.engine.layout`'s; what a run does to the folder (refusing, resuming,
replacing it without loss) is :mod:`ovlabel.pipelines.reruns`'s, one writer at a time
(:mod:`ovlabel.pipelines.lock`).
"""
from __future__ import annotations

import functools
import json
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from ovlabel.engine import layout
from ovlabel.engine.errors import OutputError
from ovlabel.engine.layout import KINDS, MARKER

log = logging.getLogger(__name__)
RowKey = tuple[int, str]


@dataclass
class OutputDir:
    """An output folder (local path or fsspec URI)."""

    root: str
    fs: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.root.strip():
            raise OutputError("--output is empty; name the folder the run should write (e.g. --output runs/first)")
        self.fs, self.path = layout.open_location(self.root)
        if self.path == "/":
            raise OutputError("refusing to write into '/': name a folder of its own with --output")
        self.root = self.root.rstrip("/")

    def join(self, *parts: str) -> str:
        """A path inside the output folder; refuses anything that would escape it."""
        for part in parts:
            if part.startswith("/") or ".." in part.split("/"):
                raise OutputError(f"refusing to write {part!r}: output paths must stay inside {self.root!r}")
        return posixpath.join(self.root, *parts)

    def fs_path(self, *parts: str) -> str:
        """A path of ``fs`` inside the folder (what fsspec calls take)."""
        self.join(*parts)
        return posixpath.join(self.path, *parts)

    def exists(self, *parts: str) -> bool:
        return bool(self.fs.exists(self.fs_path(*parts)))

    def remove(self, *parts: str) -> None:
        if self.exists(*parts):
            self.fs.rm(self.fs_path(*parts), recursive=True)

    def remove_run(self, folder: str, run_id: str) -> None:
        """Remove ``folder/run_id``, and ``folder`` too once nothing else is left in it."""
        self.remove(folder, run_id)
        if self.exists(folder) and not self.existing_entries(folder):
            self.remove(folder)

    def move(self, src: tuple[str, ...], dst: tuple[str, ...]) -> None:
        self.fs.makedirs(posixpath.dirname(self.fs_path(*dst)), exist_ok=True)
        self.fs.mv(self.fs_path(*src), self.fs_path(*dst), recursive=True)

    def existing_entries(self, *parts: str) -> list[str]:
        folder = self.fs_path(*parts)
        if not self.fs.exists(folder):
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(folder, detail=False))

    def shard_files(self, kind: str, *under: str) -> list[str]:
        return layout.shards_in(self.fs, self.fs_path(*under, kind))

    def read_columns(self, kind: str, columns: list[str], *under: str) -> list[dict[str, Any]]:
        return layout.read_rows(self.fs, self.shard_files(kind, *under), columns)

    def segment_fields(self, kind: str, fields: Sequence[str], *under: str) -> list[list[dict[str, Any]]]:
        """Each row's segments with only ``fields`` (:func:`ovlabel.engine.layout.read_segment_fields`)."""
        return layout.read_segment_fields(self.fs, self.shard_files(kind, *under), fields)

    def read_column(self, kind: str, column: str, *under: str) -> list[Any]:
        return layout.read_column(self.fs, self.shard_files(kind, *under), column)

    def row_keys(self, *under: str) -> list[RowKey]:
        """(row_index, row_hash) of every row of both kinds (of the output at ``under``)."""
        return [(r["row_index"], r["row_hash"]) for kind in KINDS
                for r in self.read_columns(kind, ["row_index", "row_hash"], *under)]

    def write_json(self, name: str, payload: dict[str, Any], *under: str) -> str:
        """Write ``payload`` whole: to a temporary name, then renamed over ``name``."""
        path = self.fs_path(*under, name)
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with self.fs.open(path + ".tmp", "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True, default=str)
        self.fs.mv(path + ".tmp", path)
        return self.join(*under, name)

    def read_json(self, name: str, *under: str) -> Optional[dict[str, Any]]:
        """A JSON file of the folder; None when it is absent or unreadable."""
        if not self.exists(*under, name):
            return None
        try:
            with self.fs.open(self.fs_path(*under, name), "r") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def marker(self, *under: str) -> Optional[dict[str, Any]]:
        """The marker ovlabel writes into every output it makes (None: not made by this ovlabel)."""
        data = self.read_json(MARKER, *under)
        return data if data is not None and data.get("ovlabel_output") else None


@functools.lru_cache(maxsize=4)
def read_row_keys(root: str, files: tuple[str, ...]) -> frozenset[RowKey]:
    """The (row_index, row_hash) of the rows in shard ``files`` (``root``'s filesystem paths); read once a process."""
    fs, _ = layout.open_location(root)
    return frozenset((r["row_index"], r["row_hash"]) for r in layout.read_rows(fs, files, ["row_index", "row_hash"]))


def count_by(values: Iterable[Optional[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items()))
