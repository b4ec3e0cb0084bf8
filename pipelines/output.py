"""The output folder: refusal to clobber, staging, publishing shards, accounting, run.json.

Its layout is :mod:`ovlabel.engine.layout`'s; this module does what a run does to the folder.
"""
from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ovlabel.engine import layout
from ovlabel.engine.errors import OutputError
from ovlabel.engine.layout import ERRORS, KINDS, RUN_INFO, STAGING

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DoneKeys:
    """What an output folder already accounts for: image ids, and raw rows of id-less error rows."""

    image_ids: frozenset[str]
    input_rows: frozenset[str]


@dataclass
class OutputDir:
    """An output folder (local path or fsspec URI)."""

    root: str
    fs: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = self.root.rstrip("/") or "/"
        self.fs, self._path = layout.open_location(self.root)

    def join(self, *parts: str) -> str:
        """A path inside the output folder; refuses anything that would escape it."""
        for part in parts:
            if part.startswith("/") or ".." in part.split("/"):
                raise OutputError(f"refusing to write {part!r}: output paths must stay inside {self.root!r}")
        return posixpath.join(self.root, *parts)

    def _fs_path(self, *parts: str) -> str:
        return posixpath.join(self._path, *parts)

    def existing_entries(self) -> list[str]:
        if not self.fs.exists(self._path):
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self._path, detail=False))

    def prepare(self, overwrite: bool, resume: bool) -> None:
        """Refuse a non-empty folder unless ``overwrite`` (clears our outputs) or ``resume`` (keeps them)."""
        entries = self.existing_entries()
        if entries and not (overwrite or resume):
            raise OutputError(f"output folder {self.root!r} is not empty ({', '.join(entries[:5])}); "
                              f"pass --overwrite to replace it or --resume to finish it")
        if overwrite or resume:  # staging of a killed run is never reused
            names = (*KINDS, STAGING, RUN_INFO) if overwrite else (STAGING,)
            for name in names:
                if self.fs.exists(self._fs_path(name)):
                    self.fs.rm(self._fs_path(name), recursive=True)
        self.fs.makedirs(self._path, exist_ok=True)

    def staging(self, run_id: str) -> str:
        return self.join(STAGING, run_id)

    def shard_files(self, kind: str) -> list[str]:
        return layout.shards_in(self.fs, self._fs_path(kind))

    def publish(self, run_id: str) -> dict[str, list[str]]:
        """Move the finished shards of a run from staging into labels/ and errors/.

        Names stay ``part-SSSSS-of-NNNNN.parquet`` when the folder holds no shards yet; a resumed
        run's shards are prefixed with its run id so nothing is overwritten.
        """
        tag = f"{run_id}-" if any(self.shard_files(kind) for kind in KINDS) else ""
        moved: dict[str, list[str]] = {}
        for kind in KINDS:
            self.fs.makedirs(self._fs_path(kind), exist_ok=True)
            moved[kind] = []
            for src in layout.shards_in(self.fs, self._fs_path(STAGING, run_id, kind)):
                dst = self._fs_path(kind, tag + posixpath.basename(src))
                self.fs.mv(src, dst)
                moved[kind].append(dst)
        self.fs.rm(self._fs_path(STAGING, run_id), recursive=True)
        if not self.fs.ls(self._fs_path(STAGING), detail=False):
            self.fs.rm(self._fs_path(STAGING), recursive=True)
        return moved

    def write_json(self, name: str, payload: dict[str, Any]) -> str:
        path = self._fs_path(name)
        with self.fs.open(path + ".tmp", "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True, default=str)
        self.fs.mv(path + ".tmp", path)
        return self.join(name)

    def done_keys(self) -> DoneKeys:
        ids = {i for kind in KINDS for i in self.read_column(kind, "image_id") if i is not None}
        rows = {r["input_row"] for r in self.read_columns(ERRORS, ["image_id", "input_row"]) if r["image_id"] is None}
        return DoneKeys(frozenset(ids), frozenset(rows))

    def read_columns(self, kind: str, columns: list[str]) -> list[dict[str, Any]]:
        return layout.read_rows(self.fs, self.shard_files(kind), columns)

    def read_column(self, kind: str, column: str) -> list[Any]:
        return layout.read_column(self.fs, self.shard_files(kind), column)


def count_by(values: Iterable[Optional[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items()))
