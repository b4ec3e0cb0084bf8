"""What ``--input`` names, read one way: a manifest file (:mod:`.manifest`), or a folder, a glob or one image
(:mod:`.folders`). Everything that reads a run's input rows (the pipeline, ``--resume``'s check, the
accounting) reads them here, so each kind of input has one definition of its rows and their keys.

``limit``: only the first that many rows (``--limit N``, ``input.limit``).
"""
from __future__ import annotations

import os
import posixpath
from itertools import islice
from typing import Iterator, Optional

import fsspec

from ovlabel.engine import manifest
from ovlabel.engine.errors import ManifestError
from ovlabel.engine.folders import Listing, is_image_name, is_pattern
from ovlabel.engine.manifest import RawRow


def _exists(location: str, kind: str) -> bool:
    try:
        fs, path = fsspec.core.url_to_fs(location)
        return bool(fs.isfile(path) if kind == "file" else fs.isdir(path))
    except (ValueError, ImportError, OSError):
        return False


def _is_manifest_name(location: str) -> bool:
    try:
        manifest.manifest_format(location)
        return True
    except ManifestError:
        return False


def listing_of(location: str) -> Optional[Listing]:
    """The images ``location`` names (a glob, one image, a folder), or None for a manifest file."""
    literal = is_pattern(location) and (_exists(location, "file") or _exists(location, "dir"))
    if is_pattern(location) and not literal:
        return Listing.of(location)
    if _is_manifest_name(location):
        return None
    if is_image_name(posixpath.basename(location)) or _exists(location, "dir"):
        return Listing.of(location, literal)
    return None


def absolute_location(location: str) -> str:
    """A local relative path (or glob) made absolute, as a worker's working folder may differ; URIs as given."""
    return location if "://" in location else os.path.abspath(location)


def read_rows(location: str, limit: Optional[int] = None) -> Iterator[RawRow]:
    """Every input row of ``location`` in order (the first ``limit`` of them)."""
    listing = listing_of(location)
    rows = listing.rows() if listing is not None else manifest.read_rows(location)
    return rows if limit is None else islice(rows, limit)


def input_keys(location: str, limit: Optional[int] = None) -> dict[int, str]:
    """row_index -> row_hash of every input row (the first ``limit``)."""
    return dict(row.key for row in read_rows(location, limit))


def check_exists(location: str) -> None:
    """Raise :class:`ManifestError` unless the input is there (a folder or glob: with at least one image)."""
    listing = listing_of(location)
    one_image = listing is not None and not is_pattern(location) and is_image_name(posixpath.basename(location))
    if one_image and not _exists(location, "file"):
        raise ManifestError(f"image {location!r} not found; check the --input path")
    if listing is not None:
        listing.check()
    elif not _is_manifest_name(location) and not _exists(location, "file"):
        raise ManifestError(f"input {location!r} not found; pass a manifest (.jsonl, .csv or .parquet), a folder "
                            f"of images or a glob such as 'photos/*.jpg'")
    else:
        manifest.check_exists(location)


def base_dir_of(location: str) -> str:
    """What a row's relative image path resolves against: the manifest's folder (a listing's rows are absolute)."""
    listing = listing_of(location)
    return listing.root if listing is not None else manifest.base_dir_of(location)
