"""The preview gallery: a card per image with its overlay, tree and marked captions; rendered in headless Chromium."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ovlabel.engine.errors import LabelsError
from ovlabel.engine.gallery import caption_html, card_html, write_preview
from ovlabel.engine.labelset import ClassIndex
from tests.engine.label_runs import labels_rows, write_labels_run

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))),
                None)


def cards(text: str) -> int:
    return len(re.findall(r'<article class="card"', text))


def test_a_card_per_image_with_its_overlay(tmp_path: Path) -> None:
    out = write_labels_run(tmp_path, "3")
    done = write_preview(str(out), str(tmp_path / "preview"))
    page = (tmp_path / "preview" / "index.html").read_text()
    assert done["images"] == 5 == cards(page) and len(list((tmp_path / "preview" / "overlays").glob("*.png"))) == 5
    assert Image.open(tmp_path / "preview" / "overlays" / "00001.png").size == (64 * 4, 48 * 4)
    assert 'src="overlays/00001.png"' in page and "http" not in page.replace("http-equiv", "")  # nothing external
    limited = tmp_path / "limited"
    assert write_preview(str(out), str(limited), limit=2)["images"] == 2 == cards((limited / "index.html").read_text())


def test_the_tree_nests_parts_in_objects_in_the_scene(tmp_path: Path) -> None:
    row = labels_rows(tmp_path, "3")[0]
    html = card_html(row, "x.png", ClassIndex.from_names(["grass", "dog", "tail"]))
    assert re.search(r'data-class="grass">.*?<ul><li data-level="object" data-class="dog">.*?<ul><li '
                     r'data-level="part" data-class="tail">', html)
    assert "&ldquo;puppy&rdquo;" in html  # the caption word, where it differs from the class
    assert 'data-tags="object:dog|part:tail|scene:grass"' in html and "0.80" in html


def test_matched_words_are_marked_and_captions_escaped() -> None:
    classes = ClassIndex.from_names(["dog"])
    segment = {"caption_index": 0, "char_span": [7, 12], "level": "object", "label": "puppy", "class_name": "dog"}
    text = caption_html("<b>A & puppy", [segment, {**segment, "char_span": [8, 11]}], 0, classes)
    assert text.startswith("&lt;b&gt;A &amp; <mark class=\"object\" title=\"object: dog\"")
    assert text.endswith(">puppy</mark>") and text.count("<mark") == 1  # overlapping spans: the first wins
    assert caption_html("a dog", [segment], 1, classes) == "a dog"  # spans of other captions are not marked


def test_bad_input_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty" / "labels").mkdir(parents=True)
    with pytest.raises(LabelsError, match="no labels shards"):
        write_preview(str(tmp_path / "empty"), str(tmp_path / "p"))
    out = write_labels_run(tmp_path, "2")
    with pytest.raises(LabelsError, match="--limit"):
        write_preview(str(out), str(tmp_path / "p"), limit=0)
    (tmp_path / "images" / "img1.png").unlink()
    with pytest.raises(LabelsError, match="image file not found: .*img1.png"):
        write_preview(str(out), str(tmp_path / "p"))


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs Debian's chromium)")
def test_the_gallery_renders_in_headless_chromium(tmp_path: Path) -> None:
    out = write_labels_run(tmp_path, "3")
    write_preview(str(out), str(tmp_path / "preview"))
    url = (tmp_path / "preview" / "index.html").as_uri()
    shot = tmp_path / "shot.png"
    _chromium("--window-size=1200,900", f"--screenshot={shot}", url, profile=tmp_path / "profile")
    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (900, 1200) and pixels.std() > 20  # not blank: cards, overlays, text
    dom = _chromium("--dump-dom", url, profile=tmp_path / "profile").stdout
    assert cards(dom) == 5 and '<span id="shown">5</span>' in dom
    filtered = _chromium("--dump-dom", url + "#class=car&level=object", profile=tmp_path / "profile").stdout
    visible = re.findall(r'<article class="card" data-tags="([^"]*)"(?! hidden)', filtered)
    assert '<span id="shown">2</span>' in filtered and len(visible) == 2
    assert all("object:car" in tags for tags in visible)
