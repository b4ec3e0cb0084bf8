"""Settings of the built-in mask generators: the config sections ``masks.sam``, ``masks.superpixel``,
``masks.precomputed`` (each generator's :class:`~ovlabel.engine.masks.registry.GeneratorSpec` names its own)."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from ovlabel.engine.sections import Fraction, NonEmptyStr, Precision, Section
from ovlabel.engine.weights import CheckpointLocation, Sha256


class SamConfig(Section):
    model_type: NonEmptyStr = Field("vit_h", description="an architecture of configs/models/sam.yaml (checked "
                                    "before a run: ovlabel.engine.masks.registry)")
    checkpoint: CheckpointLocation = Field(
        None, description="a path or URL; 'random' or 'random:SEED': seeded random weights (smoke runs, benchmarks)")
    checkpoint_sha256: Sha256 = None
    # segment-anything's automatic-mask-generation settings (ovlabel.engine.masks.sam.settings.AmgSettings)
    points_per_side: int = Field(32, ge=1)
    points_per_batch: int = Field(256, ge=1)
    pred_iou_thresh: Fraction = 0.88
    stability_score_thresh: Fraction = 0.95
    stability_score_offset: float = Field(1.0, ge=0, description="mask logit offset of the stability score")
    box_nms_thresh: float = Field(0.7, gt=0, le=1)
    crop_n_layers: int = Field(0, ge=0)
    crop_nms_thresh: float = Field(0.7, gt=0, le=1)
    crop_overlap_ratio: float = Field(512 / 1500, ge=0, lt=1)
    crop_n_points_downscale_factor: int = Field(1, ge=1)
    min_mask_region_area: int = Field(0, ge=0)
    encoder_batch_size: int = Field(4, ge=1, description="images (or crops) per image-encoder call")
    implementation: Literal["batched", "reference"] = "batched"
    precision: Precision = Field("auto", description="the batched generator's arithmetic: bf16 autocast on CUDA "
                                 "('auto'), everywhere ('bf16'), or fp32")


class SuperpixelConfig(Section):
    max_proposals: int = Field(300, ge=1)
    scale: float = Field(100.0, gt=0)
    sigma: float = Field(0.8, ge=0)
    min_size: int = Field(20, ge=0)
    max_side: int = Field(320, ge=16, description="images are segmented at most this large")
    min_area_fraction: Fraction = 0.0005
    colour_spaces: tuple[Literal["rgb", "hsv", "lab", "rgi", "hue", "intensity"], ...] = Field(
        ("hsv", "lab"), min_length=1, description="one Felzenszwalb over-segmentation per colour space and scale")
    scale_factors: tuple[Annotated[float, Field(gt=0)], ...] = Field(
        (1.0, 3.0), min_length=1, description="Felzenszwalb k values, as multiples of `scale`")
    similarities: tuple[Literal["ctsf", "tsf", "cs", "ts", "f", "s"], ...] = Field(
        ("f",), min_length=1,
        description="merge similarities: c(olour) t(exture) s(ize) f(ill) terms, one hierarchy each")
    dedupe_iou: float = Field(0.9, gt=0, le=1, description="drop a proposal this similar to a better-ranked one")
    seed: int = Field(0, ge=0)  # the ranking's random jitter (selective search); fixed, so output is deterministic


class PrecomputedConfig(Section):
    path: Optional[NonEmptyStr] = None
    format: Literal["sa1b", "shards"] = "sa1b"
