"""Settings of the built-in mask generators: the config sections ``masks.sam``, ``masks.superpixel``,
``masks.precomputed`` (each generator's :class:`~ovlabel.engine.masks.registry.GeneratorSpec` names its own)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from ovlabel.engine.sections import Section
from ovlabel.engine.weights import CheckpointLocation


class SamConfig(Section):
    model_type: str = "vit_h"
    checkpoint: CheckpointLocation = Field(
        None, description="a path or URL; 'random' or 'random:SEED': seeded random weights (smoke runs, benchmarks)")
    checkpoint_sha256: Optional[str] = None
    points_per_side: int = Field(32, ge=1)
    points_per_batch: int = Field(256, ge=1)
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = Field(0, ge=0)
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    encoder_batch_size: int = Field(4, ge=1, description="images (or crops) per image-encoder call")
    implementation: Literal["batched", "reference"] = "batched"


class SuperpixelConfig(Section):
    max_proposals: int = Field(300, ge=1)
    scale: float = 100.0
    sigma: float = 0.8
    min_size: int = 20
    max_side: int = Field(320, ge=16, description="images are segmented at most this large")
    min_area_fraction: float = 0.0005
    colour_spaces: tuple[Literal["rgb", "hsv", "lab", "rgi", "hue", "intensity"], ...] = Field(
        ("hsv", "lab"), min_length=1, description="one Felzenszwalb over-segmentation per colour space and scale")
    scale_factors: tuple[float, ...] = Field(
        (1.0, 3.0), min_length=1, description="Felzenszwalb k values, as multiples of `scale`")
    similarities: tuple[Literal["ctsf", "tsf", "cs", "ts", "f", "s"], ...] = Field(
        ("f",), min_length=1,
        description="merge similarities: c(olour) t(exture) s(ize) f(ill) terms, one hierarchy each")
    dedupe_iou: float = Field(0.9, gt=0, le=1, description="drop a proposal this similar to a better-ranked one")
    seed: int = 0  # the ranking's random jitter (selective search); fixed, so output is deterministic


class PrecomputedConfig(Section):
    path: Optional[str] = None
    format: Literal["sa1b", "shards"] = "sa1b"
