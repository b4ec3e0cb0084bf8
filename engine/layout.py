"""The output folder's layout, in one place: where a run's shards live, how a labels row is built,
and how rows are read back (the writer, ``OutputDir``, precomputed masks and evaluation use it).

Layout of an output folder ``DIR``::

    labels/<run_id>-<writer>-NNNNN.parquet  labelled images (ovlabel.schemas.LABELS_SCHEMA)
    errors/<run_id>-<writer>-NNNNN.parquet  failed inputs (ovlabel.schemas.ERRORS_SCHEMA)
    run.json             config, counts, metrics, versions, checkpoint hashes (written when a run ends)
    classes.json         the run's classes: vocabulary, id, name, segments per level (written when a run ends)
    .ovlabel.json        the marker: this folder is an ovlabel output; the config it was made with, its runs
    .ovlabel.lock        held while a run writes here (pid, host)
    _staging/<run_id>/   shards are written here whole, then renamed into labels/ and errors/ as the run goes
    _next/<run_id>/      --overwrite builds the new output here; it replaces the old one only when complete
    _swap.json           present while an overwrite swaps the new output in (a killed swap is finished next time)
    .ovlabel-probe-*     written and removed at once by preflight, proving the folder can be written

A *location* of shards (what readers take) is an output folder, one of its ``labels/`` or
``errors/`` folders, or one shard file; local paths and fsspec URIs alike.
"""
from __future__ import annotations

import posixpath
from collections import Counter
from typing import Any, Optional, Sequence

import fsspec

from ovlabel.engine.errors import OutputError
from ovlabel.engine.records import InputRecord, Segment
from ovlabel.schemas import SCHEMAS, segment_class

LABELS = "labels"
ERRORS = "errors"
KINDS = tuple(SCHEMAS)  # (LABELS, ERRORS): one folder each
STAGING = "_staging"
NEXT = "_next"
SWAP = "_swap.json"
REPLACED = "_replaced"
MARKER = ".ovlabel.json"
LOCK = ".ovlabel.lock"
RUN_INFO = "run.json"
PROBE_PREFIX = ".ovlabel-probe-"  # preflight's probe that the folder can be written (removed at once)
CLASSES = "classes.json"
SHARD_NAME = "part"
SHARD_SUFFIX = ".parquet"


def shard_prefix(folder: str, kind: str) -> str:
    """What the writer names ``kind``'s shards under ``folder`` by (``<prefix>-SSSSS-of-NNNNN.parquet``)."""
    return posixpath.join(folder, kind, SHARD_NAME)


def shards_in(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    """The shard files directly in ``folder`` (a path of ``fs``), sorted."""
    return sorted(fs.glob(posixpath.join(folder, f"*{SHARD_SUFFIX}")))


def find_shards(fs: fsspec.AbstractFileSystem, path: str, kind: str = LABELS) -> list[str]:
    """The ``kind`` shards at a location (see the module docstring); [] when there are none."""
    if path.endswith(SHARD_SUFFIX) and fs.isfile(path):
        return [path]
    folder = posixpath.join(path, kind)
    return shards_in(fs, folder if fs.isdir(folder) else path)


def open_location(location: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path) of a local path or fsspec URI."""
    fs, _, (path,) = fsspec.get_fs_token_paths(location)
    return fs, path.rstrip("/") or "/"


def read_rows(fs: fsspec.AbstractFileSystem, files: Sequence[str],
              columns: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    """The rows of shard ``files`` as dicts (only ``columns`` when given), in file order; a shard that cannot
    be read (truncated, not Parquet) is an :class:`OutputError` naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in files:
        try:
            with fs.open(path, "rb") as fh:
                rows.extend(pq.read_table(fh, columns=None if columns is None else list(columns)).to_pylist())
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(path, exc) from None
    return rows


def _unreadable(path: str, exc: BaseException) -> OutputError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return OutputError(f"shard {path!r} cannot be read ({reason}); it is truncated or not Parquet: delete "
                       f"it and rerun with --resume (the run that wrote it redoes its rows)")


def read_segment_fields(fs: fsspec.AbstractFileSystem, files: Sequence[str],
                        fields: Sequence[str]) -> list[list[dict[str, Any]]]:
    """The segments of each labels row in shard ``files`` with only ``fields`` read (masks stay on disk); a
    field a shard does not have is absent from its segments."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[list[dict[str, Any]]] = []
    for path in files:
        try:
            with fs.open(path, "rb") as fh:
                shard = pq.ParquetFile(fh)
                leaves = [shard.schema.column(i).path for i in range(shard.metadata.num_columns)]
                # segments.list.<element|item>.<field>: the fields of the segment struct itself
                wanted = [p for p in leaves if p.split(".")[0] == "segments" and len(p.split(".")) == 4
                          and p.split(".")[3] in fields]
                rows.extend(shard.read(columns=wanted).column("segments").to_pylist() if wanted else [])
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(path, exc) from None
    return rows


def read_column(fs: fsspec.AbstractFileSystem, files: Sequence[str], column: str) -> list[Any]:
    """One column of shard ``files``, in file order."""
    return [row[column] for row in read_rows(fs, files, [column])]


def segment_class_counts(fs: fsspec.AbstractFileSystem, files: Sequence[str]) -> Counter[tuple[str, str]]:
    """(class, level) -> segments, over the labels shard ``files``; only the segments' level and class columns
    are read (a schema-2 shard's class is its label: :func:`ovlabel.schemas.segment_class`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    counts: Counter[tuple[str, str]] = Counter()
    for path in files:
        try:
            with fs.open(path, "rb") as fh:
                pf = pq.ParquetFile(fh)
                wanted = _segment_columns(pf, ("level", "class_name", "label"))
                for row in pf.read(columns=wanted).column("segments").to_pylist():
                    counts.update((segment_class(s), s["level"]) for s in row or ())
        except (pa.ArrowException, OSError, KeyError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise OutputError(f"shard {path!r} cannot be read as a labels shard ({reason}); delete it and rerun "
                              f"with --resume (the run that wrote it redoes its rows)") from None
    return counts


def _segment_columns(pf: Any, fields: Sequence[str]) -> list[str]:
    """The Parquet column paths of ``fields`` of the ``segments`` structs that ``pf`` has."""
    paths = [pf.schema.column(i).path for i in range(len(pf.schema))]
    return [p for p in paths if p.startswith("segments.") and p.rsplit(".", 1)[-1] in fields]


def labels_row(record: InputRecord, image_size: tuple[int, int], segments: Sequence[Segment],
               provenance: dict[str, str]) -> dict[str, Any]:
    """One labels row (:data:`ovlabel.schemas.LABELS_SCHEMA`): an image's tree, root first."""
    h, w = image_size
    return {"image_id": record.image_id, "image_uri": record.image_uri, "width": int(w), "height": int(h),
            "captions": list(record.captions), "scene": segments[0].label,
            "segments": [s.to_row() for s in segments], "provenance": provenance,
            "row_index": record.row_index, "row_hash": record.key[1]}
