"""Input manifests: JSONL, CSV or Parquet rows with ``image``, ``caption``/``captions``, optional ``image_id``.

Reading never stops at a bad row: :func:`read_rows` yields a :class:`RawRow` for every line or
record, unparseable ones included, and :func:`to_record` turns one into an
:class:`~ovlabel.engine.records.InputRecord` or raises :class:`InputError` saying what to fix.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
from dataclasses import dataclass
from typing import Any, Iterator, Optional
from urllib.parse import urlparse

import fsspec

from ovlabel.engine.errors import InputError, ManifestError
from ovlabel.engine.reach import backend_hint
from ovlabel.engine.records import InputRecord, row_hash

FORMATS = ("jsonl", "csv", "parquet")


@dataclass(frozen=True)
class RawRow:
    """One manifest row as read: ``data`` is None when the row could not be parsed (``error`` says why). A row of
    a folder (:mod:`ovlabel.engine.folders`) may have both: what is known of it, and why it cannot be labelled."""

    index: int
    text: str
    data: Optional[dict[str, Any]] = None
    error: Optional[str] = None

    @property
    def key(self) -> tuple[int, str]:
        """(row_index, row_hash): what a resumed run recognises this row by."""
        return self.index, row_hash(self.text)


def manifest_format(path: str) -> str:
    lower = path.lower()
    for suffix, fmt in ((".jsonl", "jsonl"), (".json", "jsonl"), (".ndjson", "jsonl"), (".csv", "csv"),
                        (".parquet", "parquet"), (".pq", "parquet")):
        if lower.endswith(suffix):
            return fmt
    raise ManifestError(f"manifest {path!r} has an unknown extension; use .jsonl, .csv or .parquet (or pass a "
                        f"folder of images, or a glob such as 'photos/*.jpg')")


def _open_text(path: str) -> io.TextIOBase:
    try:
        # utf-8-sig: a byte order mark (Excel's and Notepad's 'UTF-8') is not part of the first field
        return fsspec.open(path, "rt", encoding="utf-8-sig", errors="replace").open()
    except FileNotFoundError:
        raise ManifestError(f"manifest {path!r} not found; check the --input path") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"manifest {path!r} cannot be opened ({exc}); check the path and its URI scheme") from None


def _jsonl_rows(path: str) -> Iterator[RawRow]:
    with _open_text(path) as fh:
        index = 0
        for line in fh:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                error = None if isinstance(data, dict) else f"row is a JSON {type(data).__name__}, not an object"
            except json.JSONDecodeError as exc:
                data, error = None, f"unparseable JSON line ({exc.msg} at column {exc.colno})"
            yield RawRow(index, line.rstrip("\n"), data if error is None else None, error)
            index += 1


def _csv_rows(path: str) -> Iterator[RawRow]:
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        for index, row in enumerate(reader):
            extra = row.pop(None, None)  # type: ignore[call-overload]
            text = json.dumps(row, ensure_ascii=False)
            if extra:
                yield RawRow(index, text, None, f"CSV row has {len(extra)} more fields than the header")
            else:
                yield RawRow(index, text, {k: v for k, v in row.items() if v not in (None, "")})


def _parquet_rows(path: str) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    try:
        with fsspec.open(path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            index = 0
            for batch in pf.iter_batches(batch_size=1024):
                for row in batch.to_pylist():
                    yield RawRow(index, json.dumps(row, ensure_ascii=False, default=str), row)
                    index += 1
    except FileNotFoundError:
        raise ManifestError(f"manifest {path!r} not found; check the --input path") from None


def read_rows(path: str) -> Iterator[RawRow]:
    """Every row of the manifest at ``path`` (local path or fsspec URI), in order."""
    fmt = manifest_format(path)
    yield from {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}[fmt](path)


def check_exists(path: str) -> None:
    """Raise :class:`ManifestError` unless the manifest exists (checked before a run starts)."""
    manifest_format(path)
    try:
        fs, _, paths = fsspec.get_fs_token_paths(path)
        if not fs.exists(paths[0]):
            raise ManifestError(f"manifest {path!r} not found; check the --input path")
    except ImportError as exc:
        raise ManifestError(f"manifest {path!r}: {backend_hint(path, exc)}") from None
    except ValueError as exc:
        raise ManifestError(f"manifest {path!r}: unsupported location ({exc})") from None


def stable_image_id(uri: str) -> str:
    """The default image_id: the first 16 hex digits of sha1(image URI)."""
    return hashlib.sha1(uri.encode("utf-8")).hexdigest()[:16]


def resolve_uri(image: str, base_dir: str) -> str:
    """Absolute URIs pass through; relative paths resolve against the manifest's folder."""
    if urlparse(image).scheme and len(urlparse(image).scheme) > 1:  # 'C:' is a drive, not a scheme
        return image
    if image.startswith("/"):
        return image
    return posixpath.normpath(posixpath.join(base_dir, image))


def _captions(data: dict[str, Any], required: bool = True) -> tuple[str, ...]:
    if "captions" in data and data["captions"] is not None:
        caps = data["captions"]
        if isinstance(caps, str):  # CSV cells: a JSON list or one caption
            try:
                parsed = json.loads(caps)
                caps = parsed if isinstance(parsed, list) else [caps]
            except json.JSONDecodeError:
                caps = [caps]
        if not isinstance(caps, (list, tuple)) or not all(isinstance(c, str) for c in caps):
            raise InputError("field 'captions' must be a list of strings")
        return tuple(caps)
    if "caption" in data and data["caption"] is not None:
        if not isinstance(data["caption"], str):
            raise InputError(f"field 'caption' must be a string, got {type(data['caption']).__name__}")
        return (data["caption"],)
    if not required:
        return ()
    raise InputError("row has no 'caption' or 'captions' field; add one (or set matching.captionless=vocabulary "
                     "to label rows without captions from the vocabulary)")


def to_record(row: RawRow, base_dir: str, captions_required: bool = True) -> InputRecord:
    """Validate one manifest row; raises :class:`InputError` naming the field to fix. A row with no caption field
    is one unless ``captions_required`` is False (``matching.captionless: vocabulary``): then it has none."""
    if row.data is None or row.error is not None:
        raise InputError(row.error or "unparseable manifest row")
    data = row.data
    image = data.get("image")
    if not isinstance(image, str) or not image.strip():
        raise InputError("row has no 'image' field (a path or URI string); add one")
    uri = resolve_uri(image.strip(), base_dir)
    image_id = data.get("image_id")
    if image_id is None:
        image_id = stable_image_id(uri)
    elif not isinstance(image_id, (str, int)) or isinstance(image_id, bool):
        raise InputError(f"field 'image_id' must be a string, got {type(image_id).__name__}")
    return InputRecord(image_id=str(image_id), image_uri=uri, captions=_captions(data, captions_required), raw=row.text,
                       row_index=row.index)


def base_dir_of(path: str) -> str:
    return posixpath.dirname(path) if "://" in path else posixpath.dirname(posixpath.abspath(path))
