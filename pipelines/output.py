"""The output folder: refusal to clobber, staging, publishing shards, accounting, run.json.

Layout of ``DIR``::

    labels/part-SSSSS-of-NNNNN.parquet   labelled images (ovlabel.schemas.LABELS_SCHEMA)
    errors/part-SSSSS-of-NNNNN.parquet   failed inputs (ovlabel.schemas.ERRORS_SCHEMA)
    run.json                             config, counts, metrics, versions, checkpoint hashes
    _staging/<run_id>/                   Beam writes here; shards move to labels/ and errors/
                                         only when the pipeline has finished
"""
from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import fsspec
import pyarrow.parquet as pq

from ovlabel.engine.errors import OutputError

log = logging.getLogger(__name__)
KINDS = ("labels", "errors")
STAGING = "_staging"


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
        self.fs, _, (path,) = fsspec.get_fs_token_paths(self.root)
        self._path = path

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
            names = (*KINDS, STAGING, "run.json") if overwrite else (STAGING,)
            for name in names:
                if self.fs.exists(self._fs_path(name)):
                    self.fs.rm(self._fs_path(name), recursive=True)
        self.fs.makedirs(self._path, exist_ok=True)

    def staging(self, run_id: str) -> str:
        return self.join(STAGING, run_id)

    def shard_files(self, kind: str) -> list[str]:
        pattern = self._fs_path(kind, "*.parquet")
        return sorted(self.fs.glob(pattern))

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
            for src in sorted(self.fs.glob(self._fs_path(STAGING, run_id, kind, "*.parquet"))):
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
        rows = {r["input_row"] for r in self.read_columns("errors", ["image_id", "input_row"]) if r["image_id"] is None}
        return DoneKeys(frozenset(ids), frozenset(rows))

    def read_columns(self, kind: str, columns: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for path in self.shard_files(kind):
            with self.fs.open(path, "rb") as fh:
                rows.extend(pq.read_table(fh, columns=columns).to_pylist())
        return rows

    def read_column(self, kind: str, column: str) -> list[Any]:
        values: list[Any] = []
        for path in self.shard_files(kind):
            with self.fs.open(path, "rb") as fh:
                values.extend(pq.read_table(fh, columns=[column]).column(column).to_pylist())
        return values


def count_by(values: Iterable[Optional[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items()))
