from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ovlabel.engine.errors import ImageLoadError
from ovlabel.engine.images import check_scheme, decode_image, load_image
from tests.engine.bad_files import BAD_MESSAGES, PIXEL_CAP, bad_files, good_variants


@pytest.mark.parametrize("name", sorted(BAD_MESSAGES))
def test_broken_files_raise_a_readable_error(name: str) -> None:
    with pytest.raises(ImageLoadError, match=BAD_MESSAGES[name].replace("(", r"\(").replace(")", r"\)")):
        decode_image(bad_files()[name], name, max_pixels=PIXEL_CAP, min_side=8)


@pytest.mark.parametrize("name", sorted(good_variants()))
def test_unusual_modes_decode_to_rgb_uint8(name: str) -> None:
    image = decode_image(good_variants()[name], name, max_pixels=PIXEL_CAP, min_side=8)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    expected = (64, 48) if name == "exif.jpg" else (48, 64)  # EXIF orientation 6 is applied
    assert image.shape[:2] == expected


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    image = decode_image(good_variants()["sixteen.png"], "s", min_side=8)
    assert image[0, 0, 0] == 0 and image[-1, -1, 0] == 255 and 100 < image[24, 32, 0] < 160


def test_rgba_composites_on_white() -> None:
    from PIL import Image

    from tests.engine.bad_files import encode

    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert (decode_image(encode(clear), "c") == 255).all()


def test_uri_schemes_are_an_allow_list(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="scheme 'ftp' is not allowed"):
        load_image("ftp://example.com/a.jpg")
    with pytest.raises(ImageLoadError, match="allow_http"):
        check_scheme("https://example.com/a.jpg", ["file"])
    check_scheme("https://example.com/a.jpg", ["file"], allow_http=True)
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(str(tmp_path / "missing.png"))
