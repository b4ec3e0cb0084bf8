"""Generators of broken and unusual image files for tests (bytes, no disk needed)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.support import draw_scene


def encode(img: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def rgb(seed: int = 0, size: tuple[int, int] = (48, 64)) -> Image.Image:
    return Image.fromarray(draw_scene(seed, size))


def png_bad_crc() -> bytes:
    data = bytearray(encode(rgb()))
    data[29] ^= 0xFF  # first byte of the IHDR chunk's CRC (8 signature + 4 length + 4 type + 13 data)
    return bytes(data)


def truncated_jpeg() -> bytes:
    data = encode(rgb(), "JPEG", quality=95)
    return data[: len(data) // 2]


def sixteen_bit() -> bytes:
    ramp = (np.linspace(0, 65535, 48 * 64).reshape(48, 64)).astype(np.uint16)
    return encode(Image.fromarray(ramp))


def exif_rotated() -> bytes:
    """A 48x64 (h x w) JPEG whose EXIF orientation 6 says: rotate to 64x48."""
    img = rgb(3)
    exif = img.getexif()
    exif[0x0112] = 6
    return encode(img, "JPEG", exif=exif)


GOOD_VARIANTS: dict[str, bytes] = {}


def good_variants() -> dict[str, bytes]:
    """Unusual but valid images: each must be labelled."""
    if not GOOD_VARIANTS:
        GOOD_VARIANTS.update({
            "cmyk.jpg": encode(rgb(1).convert("CMYK"), "JPEG"),
            "sixteen.png": sixteen_bit(),
            "palette.png": encode(rgb(2).convert("P")),
            "rgba.png": encode(rgb(4).convert("RGBA")),
            "gray.png": encode(rgb(5).convert("L")),
            "exif.jpg": exif_rotated(),
        })
    return GOOD_VARIANTS


def bad_files() -> dict[str, bytes]:
    """Broken files, each with the words its error message must contain."""
    return {
        "zero.jpg": b"",
        "truncated.jpg": truncated_jpeg(),
        "badcrc.png": png_bad_crc(),
        "text.jpg": b"this is a text file, not a JPEG\n",
        "vector.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        "tiny.png": encode(Image.new("RGB", (1, 1))),
        "bomb.png": encode(Image.new("RGB", (400, 300))),
    }


BAD_MESSAGES = {
    "zero.jpg": "empty (0 bytes)",
    "truncated.jpg": "truncated",
    "badcrc.png": "corrupt",
    "text.jpg": "text, not a raster image",
    "vector.svg": "SVG/XML",
    "tiny.png": "1x1, smaller than images.min_side",
    "bomb.png": "over images.max_pixels",
}
PIXEL_CAP = 100_000  # bomb.png has 120,000 pixels; every good test image has far fewer

__all__ = ["BAD_MESSAGES", "PIXEL_CAP", "bad_files", "good_variants"]
