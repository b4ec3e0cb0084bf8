"""Images as people have them: a folder (``photos/``), a glob (``'photos/**/*.jpg'``) or one image, as input rows.

Every image file (a name ending in one of :data:`IMAGE_SUFFIXES`, any case) is one row; names starting
with '.' are skipped and symlinked folders are not followed. Folders are listed one at a time, entries in
name order, a folder's files before its subfolders: a listing streams, and is the same on every run.
Local paths and fsspec URIs (``gs://bucket/photos/``) alike.

A row's captions come from a sidecar next to the image with the same stem: ``photo.txt`` (one caption a
line, blank lines skipped) or ``photo.json`` (``{"captions": [...]}``, ``{"caption": "..."}`` or a list of
strings); with neither the row has no captions. A sidecar that cannot be read makes an error row.

A row's key (what ``--resume`` recognises it by) is its position in that order and the hash of its text,
the JSON of its path relative to the listed folder and its captions: a moved folder resumes; an edited
sidecar, or a new image sorting before done ones, is a changed row. Its image_id is that relative path.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import posixpath
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ovlabel.engine.errors import ManifestError
from ovlabel.engine.manifest import RawRow

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
CAPTION_SUFFIXES = (".txt", ".json")
MAX_SIDECAR_BYTES = 1 << 20
_MAGIC = re.compile(r"[*?\[]")


def is_pattern(location: str) -> bool:
    """Whether ``location`` holds glob characters (``*``, ``?``, ``[``)."""
    return _MAGIC.search(location) is not None


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES


def matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether a relative path's ``parts`` match the glob ``pattern`` (segments; '**': any number of folders)."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(matches(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and matches(parts[1:], rest)


def may_hold(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether the folder at relative ``parts`` can hold a match of ``pattern`` (the walk skips it if not)."""
    for i, part in enumerate(parts):
        if i >= len(pattern):
            return False
        if pattern[i] == "**":
            return True
        if not fnmatchcase(part, pattern[i]):
            return False
    return len(parts) < len(pattern)


def _list_dir(fs: fsspec.AbstractFileSystem, path: str) -> list[tuple[str, bool]]:
    """(name, is a folder) of the entries of ``path``, in name order; a symlinked folder counts as a file."""
    try:
        if isinstance(fs, LocalFileSystem):
            with os.scandir(path) as entries:
                found = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        else:
            found = [(posixpath.basename(str(info["name"]).rstrip("/")), info.get("type") == "directory")
                     for info in fs.ls(path, detail=True)]
    except OSError as exc:
        raise ManifestError(f"cannot list the folder {path!r} ({type(exc).__name__}: {exc}); check its "
                            f"permissions") from None
    return sorted(found)


def captions_of(name: str, raw: bytes) -> list[str]:
    """The captions in the sidecar ``name`` (its bytes ``raw``); ValueError says what is wrong with it."""
    text = raw.decode("utf-8-sig", errors="replace")
    if name.lower().endswith(".txt"):
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"caption sidecar {name!r} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict):
        data = data.get("captions", [data["caption"]] if isinstance(data.get("caption"), str) else None)
    if not isinstance(data, list) or not all(isinstance(c, str) for c in data):
        raise ValueError(f"caption sidecar {name!r} must hold {{\"captions\": [\"...\", ...]}} "
                         f"(or {{\"caption\": \"...\"}}, or a list of strings)")
    return data


@dataclass(frozen=True)
class Listing:
    """The images of the folder ``root`` (a local path or fsspec URI) whose relative paths match ``pattern``
    (glob segments; () for every image under ``root``)."""

    root: str
    pattern: tuple[str, ...] = ()

    @classmethod
    def of(cls, location: str, literal: bool = False) -> "Listing":
        """A folder, a glob ('photos/*.jpg': the folder is the part before the first glob character) or one image;
        ``literal``: ``location`` names a file or folder whose name holds glob characters."""
        match = None if literal else _MAGIC.search(location)
        if match is None and is_image_name(posixpath.basename(location)):
            head, name = posixpath.split(location)
            return cls(head or ".", (glob.escape(name),))
        if match is None:
            return cls(location.rstrip("/") or "/")
        cut = location.rfind("/", 0, match.start())
        root, rest = (location[:cut] or "/", location[cut + 1:]) if cut >= 0 else (".", location)
        return cls(root, tuple(part for part in rest.split("/") if part))

    def _wanted(self, parts: tuple[str, ...]) -> bool:
        return is_image_name(parts[-1]) and (not self.pattern or matches(parts, self.pattern))

    def _walk(self, fs: fsspec.AbstractFileSystem, path: str,
              rel: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...], list[tuple[str, bool]]]]:
        entries = _list_dir(fs, path)
        yield path, rel, entries
        for name, is_dir in entries:
            sub = (*rel, name)
            if is_dir and not name.startswith(".") and (not self.pattern or may_hold(sub, self.pattern)):
                yield from self._walk(fs, posixpath.join(path, name), sub)

    def rows(self) -> Iterator[RawRow]:
        """One row per image, in order (see the module docstring)."""
        fs, root = self.filesystem()
        index = 0
        for path, rel, entries in self._walk(fs, root, ()):
            files = {name.lower(): name for name, is_dir in entries if not is_dir}
            for name, is_dir in entries:
                if not is_dir and self._wanted((*rel, name)):
                    yield self._row(fs, index, path, "/".join((*rel, name)), files)
                    index += 1

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        try:
            fs, root = fsspec.core.url_to_fs(self.root)
        except (ValueError, ImportError) as exc:
            raise ManifestError(f"input folder {self.root!r}: unsupported location ({exc})") from None
        return fs, root

    def _row(self, fs: fsspec.AbstractFileSystem, index: int, folder: str, rel: str,
             files: dict[str, str]) -> RawRow:
        name = posixpath.basename(rel)
        path = posixpath.join(folder, name)
        uri = path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)
        data: dict[str, Any] = {"image": uri, "image_id": rel}
        stem = posixpath.splitext(name)[0].lower()
        sidecars = [files[key] for key in (stem + s for s in CAPTION_SUFFIXES) if key in files]
        if len(sidecars) > 1:
            return RawRow(index, json.dumps({"image": rel, "sidecars": sidecars}, ensure_ascii=False), data,
                          f"image {rel!r} has two caption sidecars ({' and '.join(sidecars)}); keep one")
        captions: list[str] = []
        if sidecars:
            try:
                captions = captions_of(sidecars[0], _read_sidecar(fs, posixpath.join(folder, sidecars[0])))
            except (OSError, ValueError) as exc:
                text = json.dumps({"image": rel, "sidecar": sidecars[0]}, ensure_ascii=False)
                return RawRow(index, text, data, f"{exc}; fix it, or remove it to label {rel!r} without captions")
        data["captions"] = captions
        return RawRow(index, json.dumps({"image": rel, "captions": captions}, ensure_ascii=False), data)

    def check(self) -> None:
        """Raise :class:`ManifestError` unless ``root`` is a folder holding at least one wanted image."""
        fs, root = self.filesystem()
        if not fs.isdir(root):
            raise ManifestError(f"input folder {self.root!r} not found; check the --input path")
        if next(self.rows(), None) is None:
            what = f"matching {'/'.join(self.pattern)!r} " if self.pattern else ""
            raise ManifestError(f"no images {what}in {self.root!r} (looked for {', '.join(IMAGE_SUFFIXES)}, "
                                f"names not starting with '.'); check the --input path or pattern")


def _read_sidecar(fs: fsspec.AbstractFileSystem, path: str, max_bytes: int = MAX_SIDECAR_BYTES) -> bytes:
    with (open(path, "rb") if isinstance(fs, LocalFileSystem) else fs.open(path, "rb")) as fh:  # local: skips fsspec
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ValueError(f"caption sidecar {posixpath.basename(path)!r} is over {max_bytes} bytes")
    return raw
