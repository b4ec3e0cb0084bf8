"""Provenance: what every row records, and what run.json records about the whole run."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Optional, Sequence

from ovlabel.engine import __version__
from ovlabel.engine.config import ClipConfig, Config
from ovlabel.engine.weights import checkpoint_sha256, is_random_weights
from ovlabel.schemas import SCHEMA_VERSION

PACKAGES = ("ovlabel", "apache-beam", "torch", "torchvision", "open_clip_torch", "segment-anything", "spacy",
            "pyarrow", "pycocotools", "numpy", "pillow")


def mask_source(cfg: Config) -> str:
    """What the mask generator's registry entry says of it (e.g. ``sam:vit_h:batched``)."""
    return cfg.masks.spec.provenance(cfg.masks.settings)


def clip_source(cfg: Config) -> str:
    """``model:weights:crop_mode``; weights ``base+region`` with a ``clip.region_checkpoint`` (Alpha-CLIP's tower);
    with ``clip.ensemble`` each member's the same way and its weight, after a ``|`` (``...:alpha|m:w:masked@0.5``)."""
    c = cfg.clip
    first = f"{c.model}:{_weights_name(c)}:{cfg.matching.crop_mode}"
    members = [(c.member(i), m) for i, m in enumerate(c.ensemble)]
    return "|".join([first] + [f"{mc.model}:{_weights_name(mc)}:{m.crop_mode}@{m.weight:g}" for mc, m in members])


def _weights_name(c: ClipConfig) -> str:
    weights = "random" if is_random_weights(c.checkpoint) else (
        Path(c.checkpoint).name if c.checkpoint else c.pretrained)
    return f"{weights}+{Path(c.region_checkpoint).name}" if c.region_checkpoint else str(weights)


# What may change between a run and its resume without changing a label: how Beam deploys the work, how
# shards are cut, and where the manifest came from (its rows are checked one by one).
NOT_LABELLING = ("beam", "output", "demo")


def labelling_config(cfg: Config) -> dict[str, Any]:
    """The config that decides the labels: everything but :data:`NOT_LABELLING`, ``input.manifest`` and
    ``input.limit`` (a run on the first rows can be resumed on all of them)."""
    tree = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in NOT_LABELLING}
    tree["input"] = {k: v for k, v in tree.get("input", {}).items() if k not in ("manifest", "limit")}
    return tree


def config_sha256(cfg: Config) -> str:
    """The sha256 of :func:`labelling_config`, canonical JSON: what each row's provenance records."""
    text = json.dumps(labelling_config(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def provenance_row(cfg: Config, run_id: str) -> dict[str, str]:
    return {"pipeline_version": __version__, "schema_version": SCHEMA_VERSION, "mask_generator": mask_source(cfg),
            "clip_model": clip_source(cfg), "run_id": run_id, "config_sha256": config_sha256(cfg)}


def package_versions() -> dict[str, Optional[str]]:
    versions: dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def checkpoints(cfg: Config) -> dict[str, dict[str, Any]]:
    """run.json's ``models``: the CLIP weights (and a region checkpoint; with ``clip.ensemble`` each member's under
    ``ensemble``), and whatever the mask generator's registry entry records."""
    record = _clip_record(cfg.clip)
    if cfg.clip.ensemble:
        record["ensemble"] = [{**_clip_record(cfg.clip.member(i)), "crop_mode": m.crop_mode, "weight": m.weight}
                              for i, m in enumerate(cfg.clip.ensemble)]
    return {"clip": record, **cfg.masks.spec.models(cfg.masks.settings)}


def _clip_record(clip: ClipConfig) -> dict[str, Any]:
    record = {"model": clip.model, "pretrained": clip.pretrained, "checkpoint": clip.checkpoint,
              "sha256": checkpoint_sha256(clip.checkpoint, clip.checkpoint_sha256),
              "random_weights": is_random_weights(clip.checkpoint)}
    if clip.region_checkpoint:  # the image tower loaded over it (matching.crop_mode alpha / mask_prompt)
        record.update(region_checkpoint=clip.region_checkpoint,
                      region_sha256=checkpoint_sha256(clip.region_checkpoint, clip.region_checkpoint_sha256))
    return record


def run_metadata(cfg: Config, manifest: str, run_id: str, summary: Any, metrics: dict[str, Any],
                 beam_args: Sequence[str], runs: Sequence[dict[str, Any]] = (),
                 vocabulary: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """run.json; ``runs``: every run made into the folder (id, config hash, forced), from its marker;
    ``vocabulary``: the label vocabulary, its unmapped policy and what it dropped (``pipeline.vocabulary_summary``)."""
    return {
        "run_id": run_id,
        "config_sha256": config_sha256(cfg),
        "runs": list(runs),
        "schema_version": SCHEMA_VERSION,
        "manifest": manifest,
        "config": cfg.model_dump(mode="json"),
        "beam_args": list(beam_args),
        "counts": {k: v for k, v in dataclasses.asdict(summary).items()
                   if k not in ("output", "seconds", "stages", "unknown_labels", "warnings")},
        "stages": summary.stages,
        "unknown_labels": summary.unknown_labels,
        "warnings": list(summary.warnings),
        "accounting_ok": summary.balanced,
        "seconds": round(summary.seconds, 2),
        "metrics": metrics,
        "versions": package_versions(),
        "models": checkpoints(cfg),
        "vocabulary": vocabulary or {},
    }
