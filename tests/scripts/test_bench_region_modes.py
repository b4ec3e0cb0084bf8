"""scripts/bench_region_modes.py: every mode embeds the same kept regions, and the figures say so."""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np


def test_modes_embed_the_same_regions_and_report_per_region_costs(load_script: Callable[[str], ModuleType],
                                                                  tmp_path: Path) -> None:
    bench = load_script("bench_region_modes")
    out = tmp_path / "modes.json"
    assert bench.main(["--scenes", "1", "--repeats", "2", "--modes", "masked,alpha,dense", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["scenes"] == 1 and report["regions"] > 10
    for mode in ("masked", "alpha", "dense"):
        row = report["modes"][mode]
        assert len(row["seconds"]) == 2 and all(t > 0 for t in row["seconds"])
        assert np.isclose(row["ms_per_image"], row["ms_per_region"] * report["regions"])


def test_a_mode_matcher_has_random_weights_and_its_region_encoder(load_script: Callable[[str], ModuleType]) -> None:
    bench = load_script("bench_region_modes")
    from ovlabel.pipelines.options import load_run_config

    matcher = bench.matcher_for(load_run_config("demo", []), "alpha")
    assert matcher.cfg.crop_mode == "alpha" and matcher.embedder.crop_mode == "alpha"
    assert hasattr(matcher.embedder.model.visual, "conv1_alpha")
