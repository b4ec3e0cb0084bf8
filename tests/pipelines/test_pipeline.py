"""The pipeline with a mask generator it has never heard of: registered by this test alone."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ovlabel.engine import rle
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks import GeneratorSpec
from ovlabel.pipelines.pipeline import run
from tests.pipelines.helpers import comparable, portable_services, read_rows, tiny_config
from tests.support import ManifestWriter

pytestmark = pytest.mark.slow


@pytest.fixture
def manifest(image_folder: Path, good_rows: list[dict[str, Any]], manifest_writer: ManifestWriter) -> Path:
    return manifest_writer(image_folder, good_rows[:3])


def test_a_toy_generator_registered_by_a_test_runs_through_the_pipeline(
        grid_generator: GeneratorSpec, manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run(tiny_config("masks.generator=grid", "masks.grid.cells=3"), str(manifest), str(out))
    assert summary.balanced and summary.labeled_rows == 3 and summary.error_rows == 0
    for row in read_rows(out, "labels"):
        assert row["provenance"]["mask_generator"] == "grid:3"  # the spec's own provenance
        h, w = row["height"], row["width"]
        assert len(row["segments"]) > 1
        for seg in row["segments"][1:]:  # every labelled region is one of the grid's cells
            x, y, bw, bh = seg["bbox_xywh"]
            assert rle.decode(seg["mask"]).sum() == seg["area"] == bw * bh
            assert abs(bw - w / 3) <= 1 and abs(bh - h / 3) <= 1
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["masks"]["grid"] == {"cells": 3}
    assert info["models"]["grid"] == {"cells": 3} and "sam" not in info["models"]


def test_the_toy_generator_reaches_portable_runner_workers(grid_generator: GeneratorSpec, manifest: Path,
                                                           tmp_path: Path) -> None:
    """The workers are other processes that never ran this test's registration: the entry goes with the handler."""
    cfg = tiny_config("masks.generator=grid", "masks.grid.cells=3")
    direct, portable = tmp_path / "direct", tmp_path / "portable"
    run(cfg, str(manifest), str(direct))
    with portable_services() as beam_args:
        summary = run(cfg, str(manifest), str(portable), beam_args)
    assert summary.balanced and summary.labeled_rows == 3
    assert comparable(read_rows(portable, "labels")) == comparable(read_rows(direct, "labels"))


def test_its_preflight_check_stops_the_run_before_it_starts(grid_generator: GeneratorSpec, manifest: Path,
                                                           tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="masks.grid.cells over 8"):
        run(tiny_config("masks.generator=grid", "masks.grid.cells=9"), str(manifest), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
