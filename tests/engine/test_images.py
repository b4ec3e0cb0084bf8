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


# --- bounded reads, header caps, confinement, no leaks ---------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    from tests.engine.bad_files import encode

    return encode(Image.new("RGB", (width, height), (200, 30, 30)))


def test_a_fifo_is_refused_quickly_without_being_opened(tmp_path: Path) -> None:
    import os
    import time

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(ImageLoadError, match="not a regular file.*FIFO"):
        load_image(str(fifo), read_timeout_s=5)
    assert time.monotonic() - start < 2


def test_a_character_device_and_a_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="not a regular file.*character device"):
        load_image("/dev/zero", max_bytes=1024)
    with pytest.raises(ImageLoadError, match="not a regular file.*directory"):
        load_image(str(tmp_path))


def test_a_file_over_max_bytes_is_refused(tmp_path: Path) -> None:
    from ovlabel.engine.images import read_bytes

    path = tmp_path / "big.png"
    path.write_bytes(_png(64, 48))
    size = path.stat().st_size
    assert read_bytes(str(path), max_bytes=size) == path.read_bytes()
    with pytest.raises(ImageLoadError, match=f"{size} bytes, over images.max_bytes={size - 1}"):
        read_bytes(str(path), max_bytes=size - 1)


class _Endless:
    """A file object that never ends, counting what was read from it."""

    def __init__(self) -> None:
        self.read_total = 0

    def read(self, n: int = -1) -> bytes:
        n = 1 << 20 if n is None or n < 0 else n
        self.read_total += n
        return b"\x00" * n


def test_reads_stop_at_the_cap_and_at_the_deadline() -> None:
    import time

    from ovlabel.engine.images import read_chunks

    endless = _Endless()
    with pytest.raises(ImageLoadError, match="more than images.max_bytes=3000000"):
        read_chunks(endless, "s3://b/endless", max_bytes=3_000_000, deadline=time.monotonic() + 60)
    assert endless.read_total == 3_000_001
    with pytest.raises(ImageLoadError, match="images.read_timeout_s"):
        read_chunks(_Endless(), "s3://b/slow", max_bytes=1 << 40, deadline=time.monotonic() - 1, timeout_s=7)


def test_remote_reads_check_the_reported_size_and_the_cap() -> None:
    import fsspec

    data = _png(64, 48)
    fs = fsspec.filesystem("memory")
    fs.pipe("/bounds/a.png", data)
    uri = "memory://bounds/a.png"
    assert load_image(uri, allowed_schemes=("memory",)).shape == (48, 64, 3)
    with pytest.raises(ImageLoadError, match="over images.max_bytes=100"):
        load_image(uri, allowed_schemes=("memory",), max_bytes=100)


def test_text_posing_as_an_image_never_quotes_its_content(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("toor:$6$SECRETHASH:19000:0:99999:7:::\n")
    link = tmp_path / "photo.jpg"
    link.symlink_to(secret)
    with pytest.raises(ImageLoadError, match="is text, not a raster image") as info:
        load_image(str(link))
    assert "toor" not in str(info.value) and "SECRETHASH" not in str(info.value)
    with pytest.raises(ImageLoadError, match="unsupported or unknown") as info:
        decode_image(b"\xfe\xed\xfa\xce\x01\x02\x03\x04\x05", "x.bin")
    assert "feedface" not in str(info.value)


def test_side_and_aspect_caps_are_checked_from_the_header() -> None:
    with pytest.raises(ImageLoadError, match="aspect ratio .* over images.max_aspect=20"):
        decode_image(_png(6000, 9), "long.png", max_aspect=20)
    with pytest.raises(ImageLoadError, match="longest side 2000 over images.max_side=1999"):
        decode_image(_png(2000, 1000), "wide.png", max_side=1999)
    assert decode_image(_png(2000, 1000), "wide.png", max_side=2000, max_aspect=2).shape == (1000, 2000, 3)


def test_defaults_refuse_the_hostile_pngs_and_keep_phone_photos() -> None:
    with pytest.raises(ImageLoadError, match="images.max_aspect"):
        decode_image(_png(60000, 9), "long.png")
    with pytest.raises(ImageLoadError, match="images.max_"):
        decode_image(_png(7999, 7999), "huge.png")
    assert decode_image(_png(4032, 3024), "phone.png").shape == (3024, 4032, 3)


def test_input_root_confines_local_paths(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    outside = tmp_path / "outside.png"
    outside.write_bytes(_png(16, 16))
    inside = root / "images" / "a.png"
    inside.write_bytes(_png(16, 16))
    (root / "images" / "escape.png").symlink_to(outside)
    (root / "images" / "alias.png").symlink_to(inside)
    assert load_image(str(inside), root=str(root)).shape == (16, 16, 3)
    assert load_image(str(root / "images" / "alias.png"), root=str(root)).shape == (16, 16, 3)
    for uri in (str(root / "images" / "escape.png"), str(outside), str(root / "images" / ".." / ".." / "outside.png")):
        with pytest.raises(ImageLoadError, match="is outside input.root"):
            load_image(uri, root=str(root))
    assert load_image(str(outside)).shape == (16, 16, 3)  # no root: not confined


def test_input_root_confines_uris_with_a_scheme() -> None:
    from ovlabel.engine.images import check_root

    check_root("gs://bucket/data/a.png", "gs://bucket/data")
    for uri in ("gs://bucket/database/a.png", "gs://bucket/data/../secret.png", "s3://bucket/data/a.png"):
        with pytest.raises(ImageLoadError, match="is outside input.root"):
            check_root(uri, "gs://bucket/data/")
    with pytest.raises(ImageLoadError, match="is outside input.root"):
        check_root("s3://bucket/a.png", "/local/root")
