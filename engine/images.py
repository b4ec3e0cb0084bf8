"""Image loading: bounded read, guarded PIL decode, EXIF transpose, RGB uint8 (H, W, 3).

Every refusal raises :class:`ImageLoadError` with a message a user can act on; no message quotes the
file's contents. Reads are bounded: a local path must be a regular file (checked with ``stat`` before
it is opened, so a FIFO or ``/dev/zero`` is never read), every read is chunked and stops past
``max_bytes`` or at the ``read_timeout_s`` deadline, and the header's size is checked against the
pixel, side and aspect caps before anything is decoded. With ``root`` set, a path (symlinks followed)
or URI must lie inside it.
"""
from __future__ import annotations

import io
import logging
import os
import posixpath
import re
import stat
import time
import warnings
from typing import Any, Optional, Protocol, Sequence
from urllib.parse import urlparse

import fsspec
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ovlabel.engine.errors import ImageLoadError

log = logging.getLogger(__name__)
ImageFile.LOAD_TRUNCATED_IMAGES = False

MAX_PIXELS = 12_582_912  # 4096 x 3072; see README "What happens to bad input" for the memory this bounds
MAX_SIDE = 8192
MAX_ASPECT = 20.0
MAX_BYTES = 64 * 1024 * 1024
READ_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"))


class _Readable(Protocol):
    def read(self, n: int = ..., /) -> bytes: ...


def uri_scheme(uri: str) -> str:
    scheme = urlparse(uri).scheme
    return "file" if len(scheme) <= 1 else scheme.lower()  # '' or a Windows drive letter


def check_scheme(uri: str, allowed: Sequence[str], allow_http: bool = False) -> None:
    """Refuse URI schemes outside the allow-list (http(s) only when ``allow_http``)."""
    scheme = uri_scheme(uri)
    permitted = set(allowed) | ({"http", "https"} if allow_http else set())
    if scheme not in permitted:
        hint = " (set input.allow_http=true to fetch over HTTP)" if scheme in ("http", "https") else ""
        raise ImageLoadError(f"URI scheme {scheme!r} is not allowed for {uri!r}; allowed: {sorted(permitted)}{hint}")


def local_path(uri: str) -> str:
    """The filesystem path of a local URI ('file:///a/b.png' or a plain path)."""
    return uri.removeprefix("file://")


def _normalised_uri(uri: str) -> str:
    """'gs://b/x/../y' -> 'gs://b/y' (the path part normalised, no trailing slash)."""
    parts = urlparse(uri)
    path = posixpath.normpath(parts.path or "/")
    return f"{parts.scheme.lower()}://{parts.netloc}{'' if path == '/' else path}"


def check_root(uri: str, root: Optional[str]) -> None:
    """Refuse ``uri`` unless it lies inside ``root`` (None: anything goes). A local path is compared
    after ``os.path.realpath`` (symlinks followed, ``..`` resolved); a URI with a scheme must start
    with the root, which then has the same scheme."""
    if root is None:
        return
    if uri_scheme(uri) == "file" and uri_scheme(root) == "file":
        where, base = os.path.realpath(local_path(uri)), os.path.realpath(local_path(root))
        inside = os.path.commonpath([where, base]) == base
    else:
        where, base = _normalised_uri(uri), _normalised_uri(root)
        inside = uri_scheme(uri) == uri_scheme(root) and (where == base or where.startswith(base + "/"))
    if not inside:
        raise ImageLoadError(f"image path {uri!r} is outside input.root={root!r} (it resolves to {where!r}); "
                             "move the image under the root or change input.root")


def read_chunks(fh: _Readable, uri: str, max_bytes: int, deadline: float, timeout_s: float = READ_TIMEOUT_S) -> bytes:
    """Read ``fh`` to its end in chunks, never more than ``max_bytes + 1`` bytes, giving up at ``deadline``
    (``time.monotonic()``) between chunks."""
    parts: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise ImageLoadError(f"reading {uri!r} took longer than images.read_timeout_s={timeout_s:g}; "
                                 "check the storage or raise the timeout")
        chunk = fh.read(min(CHUNK_BYTES, max_bytes + 1 - total))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise ImageLoadError(f"image {uri!r} holds more than images.max_bytes={max_bytes} bytes; "
                                 "raise the cap or shrink the file")


def _too_big(uri: str, size: int, max_bytes: int) -> ImageLoadError:
    return ImageLoadError(f"image {uri!r} is {size} bytes, over images.max_bytes={max_bytes}; "
                          "raise the cap or shrink the file")


def _check_regular(uri: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise ImageLoadError(f"image path {uri!r} is not a regular file (it is {kind}); "
                             "point the manifest's 'image' at an image file")


def _read_local(uri: str, max_bytes: int, deadline: float, timeout_s: float) -> bytes:
    path = local_path(uri)
    info = os.stat(path)  # follows symlinks; raises FileNotFoundError
    _check_regular(uri, info.st_mode)
    if info.st_size > max_bytes:
        raise _too_big(uri, info.st_size, max_bytes)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never blocks, should it have become a FIFO
    with os.fdopen(fd, "rb", buffering=0) as fh:
        _check_regular(uri, os.fstat(fd).st_mode)
        return read_chunks(fh, uri, max_bytes, deadline, timeout_s)


def _read_remote(uri: str, max_bytes: int, deadline: float, timeout_s: float) -> bytes:
    fs, path = fsspec.core.url_to_fs(uri)
    info: dict[str, Any] = fs.info(path)
    if info.get("type") == "directory":
        raise ImageLoadError(f"image path {uri!r} is a directory, not a file; point the manifest's 'image' at a file")
    size = info.get("size")
    if isinstance(size, int) and size > max_bytes:
        raise _too_big(uri, size, max_bytes)
    with fs.open(path, "rb") as fh:
        return read_chunks(fh, uri, max_bytes, deadline, timeout_s)


def read_bytes(uri: str, max_bytes: int = MAX_BYTES, read_timeout_s: float = READ_TIMEOUT_S) -> bytes:
    """The bytes at ``uri``, at most ``max_bytes`` of them, read within ``read_timeout_s`` seconds."""
    deadline = time.monotonic() + read_timeout_s
    reader = _read_local if uri_scheme(uri) == "file" else _read_remote
    try:
        data = reader(uri, max_bytes, deadline, read_timeout_s)
    except FileNotFoundError:
        raise ImageLoadError(f"image file not found: {uri!r}; fix the manifest's 'image' path") from None
    except (OSError, ValueError, ImportError) as exc:
        raise ImageLoadError(f"cannot read {uri!r}: {type(exc).__name__}: {exc}") from None
    if not data:
        raise ImageLoadError(f"image file is empty (0 bytes): {uri!r}")
    return data


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP",
         b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"RIFF": "WEBP"}
_BYTES_LITERAL = re.compile(r"""b(['"]).*?(?<!\\)\1""")


def _unidentified_message(data: bytes, uri: str) -> str:
    """What the file looks like, never what it holds (an image path may point at a secret)."""
    head = data[:512]
    for magic, fmt in MAGIC.items():
        if head.startswith(magic):
            return f"image {uri!r} starts like a {fmt} file but is corrupt (its header does not decode); re-encode or drop it"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        kind = "SVG/XML, a vector format" if text.lstrip().startswith("<") else "text"
        return f"{uri!r} is {kind}, not a raster image; convert it to PNG or JPEG"
    return f"{uri!r} is in an unsupported or unknown image format; convert it to PNG or JPEG"


def _without_bytes(exc: BaseException) -> str:
    """A decoder's message with any bytes it quotes (a chunk name, a marker) left out."""
    return _BYTES_LITERAL.sub("<bytes>", str(exc))


def check_size(uri: str, width: int, height: int, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE,
               max_aspect: float = MAX_ASPECT) -> None:
    """Refuse a header size over the pixel, longest-side or aspect-ratio cap (nothing is decoded yet)."""
    if width * height > max_pixels:
        raise ImageLoadError(f"image {uri!r} is {width}x{height} = {width * height} pixels, over images.max_pixels="
                             f"{max_pixels}; raise the cap or downscale the image")
    if min(width, height) > 0 and max(width, height) / min(width, height) > max_aspect:
        ratio = max(width, height) / min(width, height)
        raise ImageLoadError(f"image {uri!r} is {width}x{height}, aspect ratio {ratio:.1f} over images.max_aspect="
                             f"{max_aspect:g}; raise the cap or crop the image")
    if max(width, height) > max_side:
        raise ImageLoadError(f"image {uri!r} is {width}x{height}, longest side {max(width, height)} over "
                             f"images.max_side={max_side}; raise the cap or downscale the image")


def _open_checked(data: bytes, uri: str, caps: dict[str, Any]) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data))
        check_size(uri, *img.size, **caps)
        img.load()
        return ImageOps.exif_transpose(img)


def decode_image(data: bytes, uri: str = "<bytes>", max_pixels: int = MAX_PIXELS, min_side: int = 1,
                 max_side: int = MAX_SIDE, max_aspect: float = MAX_ASPECT) -> np.ndarray:
    """Decode image bytes to (H, W, 3) uint8 RGB, EXIF-transposed, within the pixel, side and aspect caps."""
    if not data:
        raise ImageLoadError(f"image file is empty (0 bytes): {uri!r}")
    try:
        img = _open_checked(data, uri, {"max_pixels": max_pixels, "max_side": max_side, "max_aspect": max_aspect})
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(_unidentified_message(data, uri)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"image {uri!r} exceeds the pixel cap: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"image {uri!r} is corrupt or truncated: {_without_bytes(exc)}") from None
    if min(img.size) < min_side:
        raise ImageLoadError(f"image {uri!r} is {img.size[0]}x{img.size[1]}, smaller than images.min_side={min_side}")
    return np.ascontiguousarray(_to_rgb(img))


def load_image(uri: str, max_pixels: int = MAX_PIXELS, min_side: int = 1,
               allowed_schemes: Sequence[str] = ("file", "gs", "s3"), allow_http: bool = False, *,
               max_side: int = MAX_SIDE, max_aspect: float = MAX_ASPECT, max_bytes: int = MAX_BYTES,
               read_timeout_s: float = READ_TIMEOUT_S, root: Optional[str] = None) -> np.ndarray:
    """Check, read and decode the image at ``uri``: the scheme allow-list, ``root`` confinement, the bounded
    read (:func:`read_bytes`), then :func:`decode_image`."""
    check_scheme(uri, allowed_schemes, allow_http)
    check_root(uri, root)
    data = read_bytes(uri, max_bytes=max_bytes, read_timeout_s=read_timeout_s)
    return decode_image(data, uri, max_pixels=max_pixels, min_side=min_side, max_side=max_side, max_aspect=max_aspect)


class ImageLimits(Protocol):
    """What :func:`load_configured` reads of the ``images`` config section."""

    max_pixels: int
    min_side: int
    max_side: int
    max_aspect: float
    max_bytes: int
    read_timeout_s: float


class InputRules(Protocol):
    """What :func:`load_configured` reads of the ``input`` config section."""

    allowed_schemes: Sequence[str]
    allow_http: bool
    root: Optional[str]


def load_configured(uri: str, images: ImageLimits, inputs: InputRules) -> np.ndarray:
    """:func:`load_image` with the limits of a run's ``images`` and ``input`` config sections."""
    return load_image(uri, max_pixels=images.max_pixels, min_side=images.min_side,
                      allowed_schemes=inputs.allowed_schemes, allow_http=inputs.allow_http,
                      max_side=images.max_side, max_aspect=images.max_aspect, max_bytes=images.max_bytes,
                      read_timeout_s=images.read_timeout_s, root=inputs.root)
