"""Provenance: what every row records, and what run.json records about the whole run."""
from __future__ import annotations

import dataclasses
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Optional, Sequence
from urllib.parse import urlparse

from ovlabel.engine import __version__
from ovlabel.engine.config import Config
from ovlabel.schemas import SCHEMA_VERSION

PACKAGES = ("ovlabel", "apache-beam", "torch", "torchvision", "open_clip_torch", "segment-anything", "spacy",
            "pyarrow", "pycocotools", "numpy", "pillow")


def mask_source(cfg: Config) -> str:
    m = cfg.masks
    if m.generator == "sam":
        return f"sam:{m.sam.model_type}:{m.sam.implementation}" + (":random" if m.sam.random_weights else "")
    return m.generator


def clip_source(cfg: Config) -> str:
    c = cfg.clip
    weights = "random" if c.random_weights else (Path(c.checkpoint).name if c.checkpoint else c.pretrained)
    return f"{c.model}:{weights}:{c.crop_mode}"


def provenance_row(cfg: Config, run_id: str) -> dict[str, str]:
    return {"pipeline_version": __version__, "schema_version": SCHEMA_VERSION, "mask_generator": mask_source(cfg),
            "clip_model": clip_source(cfg), "run_id": run_id}


def package_versions() -> dict[str, Optional[str]]:
    versions: dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _checkpoint_hash(location: Optional[str], configured: Optional[str]) -> Optional[str]:
    if location is None:
        return None
    if configured:
        return configured
    from ovlabel.engine.weights import local_checkpoint, sha256_file

    if urlparse(location).scheme in ("", "file") and local_checkpoint(location).is_file():
        return sha256_file(local_checkpoint(location))
    return None


def checkpoints(cfg: Config) -> dict[str, dict[str, Any]]:
    sam, clip = cfg.masks.sam, cfg.clip
    out = {"clip": {"model": clip.model, "pretrained": clip.pretrained, "checkpoint": clip.checkpoint,
                    "sha256": _checkpoint_hash(clip.checkpoint, clip.checkpoint_sha256),
                    "random_weights": clip.random_weights}}
    if cfg.masks.generator == "sam":
        out["sam"] = {"model_type": sam.model_type, "checkpoint": sam.checkpoint,
                      "sha256": _checkpoint_hash(sam.checkpoint, sam.checkpoint_sha256),
                      "random_weights": sam.random_weights}
    return out


def run_metadata(cfg: Config, manifest: str, run_id: str, summary: Any, metrics: dict[str, Any],
                 beam_args: Sequence[str]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "schema_version": SCHEMA_VERSION,
        "manifest": manifest,
        "config": cfg.model_dump(mode="json"),
        "beam_args": list(beam_args),
        "counts": {k: v for k, v in dataclasses.asdict(summary).items() if k not in ("output", "seconds", "stages")},
        "stages": summary.stages,
        "accounting_ok": summary.balanced,
        "seconds": round(summary.seconds, 2),
        "metrics": metrics,
        "versions": package_versions(),
        "models": checkpoints(cfg),
    }
