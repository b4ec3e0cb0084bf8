"""Provenance: what every labels row records of the run, and what run.json records about it."""
from __future__ import annotations

import hashlib
import platform
from pathlib import Path

import pytest

from ovlabel.engine import __version__
from ovlabel.engine.config import Config, load_config
from ovlabel.engine.masks import GeneratorSpec
from ovlabel.pipelines import provenance
from ovlabel.pipelines.options import load_run_config
from ovlabel.pipelines.pipeline import RunSummary
from ovlabel.pipelines.provenance import (PACKAGES, checkpoints, clip_source, config_sha256, labelling_config,
                                          mask_source, package_versions, provenance_row, run_metadata)
from ovlabel.schemas import PROVENANCE_TYPE, SCHEMA_VERSION


@pytest.mark.parametrize("overrides, expected", [
    ((), "sam:vit_h:batched"),
    (("masks.sam.checkpoint=random",), "sam:vit_h:batched:random"),
    (("masks.sam.checkpoint=random:3", "masks.sam.implementation=reference"), "sam:vit_h:reference:random"),
    (("masks.generator=superpixel",), "superpixel"),  # a spec without a source of its own: its name
])
def test_the_mask_generator_is_described_by_its_registry_entry(overrides: tuple[str, ...], expected: str) -> None:
    assert mask_source(load_config(None, list(overrides))) == expected


def test_a_registered_generator_describes_itself(grid_generator: GeneratorSpec) -> None:
    cfg = load_config(None, ["masks.generator=grid", "masks.grid.cells=3"])
    assert mask_source(cfg) == "grid:3"
    assert checkpoints(cfg)["grid"] == {"cells": 3} and set(checkpoints(cfg)) == {"clip", "grid"}


@pytest.mark.parametrize("overrides, expected", [
    ((), "ViT-B-16:openai:masked"),
    (("clip.checkpoint=random:2",), "ViT-B-16:random:masked"),
    (("clip.checkpoint=/w/my-clip.safetensors", "matching.crop_mode=box"), "ViT-B-16:my-clip.safetensors:box"),
    (("clip.model=RN50", "clip.pretrained=yfcc15m", "matching.crop_mode=blend"), "RN50:yfcc15m:blend"),
    (("clip.region_checkpoint=/w/clip_l14_grit20m_fultune_2xe.pth", "matching.crop_mode=alpha"),
     "ViT-B-16:openai+clip_l14_grit20m_fultune_2xe.pth:alpha"),
    (("matching.crop_mode=alpha", "clip.checkpoint=/w/a.safetensors",
      "clip.ensemble=[{crop_mode: masked, weight: 0.5, checkpoint: /w/m.safetensors}]"),
     "ViT-B-16:a.safetensors:alpha|ViT-B-16:m.safetensors:masked@0.5"),
])
def test_the_clip_model_names_its_weights_and_crop_mode(overrides: tuple[str, ...], expected: str) -> None:
    assert clip_source(load_config(None, list(overrides))) == expected


def test_a_row_records_versions_models_and_the_run() -> None:
    row = provenance_row(Config(), "run-1")
    assert set(row) == {f.name for f in PROVENANCE_TYPE}
    assert row == {"pipeline_version": __version__, "schema_version": SCHEMA_VERSION,
                   "mask_generator": "sam:vit_h:batched", "clip_model": "ViT-B-16:openai:masked", "run_id": "run-1",
                   "config_sha256": config_sha256(Config())}
    assert provenance_row(load_config(None, ["matching.similarity_threshold=0.3"]), "r")["config_sha256"] != \
        row["config_sha256"]


def test_the_config_hash_leaves_out_what_does_not_change_a_label() -> None:
    base = config_sha256(load_run_config(None))
    for deployment in ("beam.masks.images_per_batch=1", "output.rows_per_shard=5", "input.manifest=x.jsonl",
                       "demo.num_images=3"):
        assert config_sha256(load_run_config(None, [deployment])) == base, deployment
    assert "beam" not in labelling_config(load_run_config(None)) and "manifest" not in labelling_config(Config())["input"]


def test_package_versions_list_python_and_every_package(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = package_versions()
    assert list(versions) == ["python", *PACKAGES] and versions["python"] == platform.python_version()
    assert versions["apache-beam"] and versions["numpy"]
    monkeypatch.setattr(provenance, "PACKAGES", ("no-such-package-for-ovlabel",))
    assert package_versions() == {"python": platform.python_version(), "no-such-package-for-ovlabel": None}


def test_checkpoints_record_clip_and_the_mask_generators_weights() -> None:
    models = checkpoints(Config())
    assert models["clip"] == {"model": "ViT-B-16", "pretrained": "openai", "checkpoint": None, "sha256": None,
                              "random_weights": False}
    assert models["sam"]["model_type"] == "vit_h" and set(models) == {"clip", "sam"}
    assert set(checkpoints(load_config(None, ["masks.generator=superpixel"]))) == {"clip"}  # no weights to record


def test_a_checkpoints_hash_is_the_configured_one_else_the_local_files(tmp_path: Path) -> None:
    weights = tmp_path / "clip.pt"
    weights.write_bytes(b"weights")
    local = checkpoints(load_config(None, [f"clip.checkpoint={weights}"]))["clip"]
    assert local["checkpoint"] == str(weights) and local["sha256"] == hashlib.sha256(b"weights").hexdigest()
    configured = load_config(None, [f"clip.checkpoint={weights}", f"clip.checkpoint_sha256={'ab' * 32}"])
    assert checkpoints(configured)["clip"]["sha256"] == "ab" * 32
    remote = load_config(None, ["clip.checkpoint=https://example.com/clip.pt"])
    assert checkpoints(remote)["clip"]["sha256"] is None  # never downloaded to be hashed
    region = checkpoints(load_config(None, [f"clip.region_checkpoint={weights}", "matching.crop_mode=alpha"]))["clip"]
    assert region["region_checkpoint"] == str(weights) and region["region_sha256"] == local["sha256"]
    member = f"clip.ensemble=[{{crop_mode: masked, weight: 0.4, checkpoint: {weights}}}]"
    both = checkpoints(load_config(None, [member, "matching.crop_mode=alpha", "clip.checkpoint=random"]))["clip"]
    assert both["random_weights"] and both["ensemble"] == [
        {"model": "ViT-B-16", "pretrained": None, "checkpoint": str(weights), "sha256": local["sha256"],
         "random_weights": False, "crop_mode": "masked", "weight": 0.4}]


def test_run_metadata_counts_come_from_the_summary() -> None:
    stages = {"ValidateRows": {"in": 3, "out": 2, "errors": 1, "skipped": 0}}
    summary = RunSummary("/out", 3, 2, 1, {"ValidateRows": 1}, 12.3456, stages)
    cfg = Config()
    info = run_metadata(cfg, "m.jsonl", "run-1", summary, {"step/x": 1}, ("--runner=DirectRunner",))
    assert info["counts"] == {"input_rows": 3, "labeled_rows": 2, "error_rows": 1,
                              "errors_by_stage": {"ValidateRows": 1}, "missing_rows": 0, "duplicate_rows": 0,
                              "errors_by_kind": {}, "segments_by_level": {}, "top_classes": [], "top_scenes": []}
    assert info["stages"] == stages and info["accounting_ok"] is True and info["seconds"] == 12.35
    assert (info["run_id"], info["manifest"], info["schema_version"]) == ("run-1", "m.jsonl", SCHEMA_VERSION)
    assert info["beam_args"] == ["--runner=DirectRunner"] and info["metrics"] == {"step/x": 1}
    assert info["config"] == cfg.model_dump(mode="json") and info["models"] == checkpoints(cfg)
    assert info["versions"] == package_versions()
    unbalanced = RunSummary("/out", 3, 1, 1, {}, 1.0, stages)
    assert run_metadata(cfg, "m.jsonl", "r", unbalanced, {}, [])["accounting_ok"] is False
