"""Image loading: fsspec read, guarded PIL decode, EXIF transpose, RGB uint8 (H, W, 3).

Every refusal raises :class:`ImageLoadError` with a message a user can act on.
"""
from __future__ import annotations

import io
import logging
import warnings
from typing import Sequence
from urllib.parse import urlparse

import fsspec
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ovlabel.engine.errors import ImageLoadError

log = logging.getLogger(__name__)
ImageFile.LOAD_TRUNCATED_IMAGES = False


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


def read_bytes(uri: str) -> bytes:
    try:
        with fsspec.open(uri, "rb") as fh:
            data = fh.read()
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


def _unidentified_message(data: bytes, uri: str) -> str:
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
        return f"{uri!r} is {kind}, not a raster image (starts with {text[:24]!r}); convert it to PNG or JPEG"
    return f"{uri!r} is in an unsupported or unknown image format (first bytes {head[:8].hex()}); convert it to PNG or JPEG"


def decode_image(data: bytes, uri: str = "<bytes>", max_pixels: int = 64_000_000, min_side: int = 1) -> np.ndarray:
    """Decode image bytes to (H, W, 3) uint8 RGB, EXIF-transposed, within the pixel cap."""
    if not data:
        raise ImageLoadError(f"image file is empty (0 bytes): {uri!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise ImageLoadError(f"image {uri!r} is {w}x{h} = {w * h} pixels, over images.max_pixels="
                                     f"{max_pixels}; raise the cap or downscale the image")
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(_unidentified_message(data, uri)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"image {uri!r} exceeds the pixel cap: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"image {uri!r} is corrupt or truncated: {exc}") from None
    if min(img.size) < min_side:
        raise ImageLoadError(f"image {uri!r} is {img.size[0]}x{img.size[1]}, smaller than images.min_side={min_side}")
    return np.ascontiguousarray(_to_rgb(img))


def load_image(uri: str, max_pixels: int = 64_000_000, min_side: int = 1,
               allowed_schemes: Sequence[str] = ("file", "gs", "s3"), allow_http: bool = False) -> np.ndarray:
    """Read and decode the image at ``uri``; see :func:`decode_image`."""
    check_scheme(uri, allowed_schemes, allow_http)
    return decode_image(read_bytes(uri), uri, max_pixels=max_pixels, min_side=min_side)
