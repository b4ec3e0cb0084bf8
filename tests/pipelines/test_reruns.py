"""Reruns: refusal, --overwrite, --resume, and a SIGKILLed run that leaves no partial shard."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import RunConfig
from ovlabel.pipelines.pipeline import run
from tests.pipelines.helpers import FAST_MASKS, TINY_OVERRIDES, comparable, read_rows, tiny_config
from tests.support import ManifestWriter, SceneImage

pytestmark = pytest.mark.slow


def _cfg() -> RunConfig:
    return tiny_config(*FAST_MASKS)


def _rows(folder: Path, n: int, scene_image: SceneImage, captions: list[list[str]]) -> list[dict[str, Any]]:
    (folder / "images").mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        Image.fromarray(scene_image(10 + i, (48, 64))).save(folder / "images" / f"r{i}.png")
        rows.append({"image": f"images/r{i}.png", "captions": captions[i % len(captions)], "image_id": f"r{i}"})
    rows.append({"image": "images/none.png", "caption": "A cat.", "image_id": "gone"})
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, scene_image: SceneImage, captions: list[list[str]],
          manifest_writer: ManifestWriter) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("reruns")
    rows = _rows(folder, 4, scene_image, captions)
    full = manifest_writer(folder, rows, "full.jsonl")
    reference = folder / "reference"
    run(_cfg(), str(full), str(reference))
    return {"folder": folder, "rows": rows, "full": full, "reference": reference}


def _same_rows(a: Path, b: Path) -> None:
    for kind in ("labels", "errors"):
        assert comparable(read_rows(a, kind)) == comparable(read_rows(b, kind)), kind


def test_rerun_is_identical_and_overwrite_replaces(world: dict[str, Any]) -> None:
    out = world["folder"] / "again"
    run(_cfg(), str(world["full"]), str(out))
    _same_rows(out, world["reference"])
    summary = run(_cfg(), str(world["full"]), str(out), overwrite=True)
    assert summary.input_rows == summary.labeled_rows + summary.error_rows == 5
    _same_rows(out, world["reference"])


def test_resume_processes_only_what_is_missing(world: dict[str, Any], manifest_writer: ManifestWriter) -> None:
    out = world["folder"] / "resumed"
    first_half = manifest_writer(world["folder"], world["rows"][:2], "half.jsonl")
    run(_cfg(), str(first_half), str(out))
    summary = run(_cfg(), str(world["full"]), str(out), resume=True)
    info = json.loads((out / "run.json").read_text())
    assert info["stages"]["ValidateRows"]["skipped"] == 2  # r0 and r1 were done
    assert info["stages"]["ParseCaptions"]["in"] == 3
    assert summary.balanced and summary.input_rows == 5
    _same_rows(out, world["reference"])


def test_sigkill_leaves_no_partial_shard_and_resume_completes(world: dict[str, Any]) -> None:
    out = world["folder"] / "killed"
    cmd = [sys.executable, "-m", "ovlabel.pipelines.cli", "run", "--config", str(config_path("tiny.yaml")),
           "--input", str(world["full"]), "--output", str(out), *TINY_OVERRIDES, *FAST_MASKS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "_staging").glob("*/*")):
        time.sleep(0.2)
    time.sleep(0.3)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list((out / "labels").glob("*.parquet")) if (out / "labels").exists() else True
    assert not (out / "run.json").exists()
    summary = run(_cfg(), str(world["full"]), str(out), resume=True)
    assert summary.balanced and not (out / "_staging").exists()
    _same_rows(out, world["reference"])


def test_non_empty_output_is_refused_without_a_flag(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from ovlabel.pipelines.cli import main

    code = main(["run", "--config", str(config_path("tiny.yaml")), "--input", str(world["full"]),
                 "--output", str(world["reference"])])
    assert code == 2 and "--overwrite" in capsys.readouterr().err

