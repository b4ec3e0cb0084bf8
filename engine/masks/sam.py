"""Segment Anything: model building from architecture data + checkpoint, and the reference generator.

Architectures live in ``configs/models/sam.yaml`` (vit_h, vit_l, vit_b, and vit_tiny for tests).
The checkpoint is a path or URL (``masks.sam.checkpoint``); without one, the official file for the
model type is named in the error. ``random_weights: true`` builds the same model with seeded
random weights (tests and benchmarks only).
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Optional, Sequence

import numpy as np
import yaml

from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.shipped import shipped
from ovlabel.engine.errors import ConfigError, ModelWeightsError
from ovlabel.engine.masks.base import MaskGenerator
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.weights import load_state_dict, resolve_checkpoint, sha256_file

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def sam_architectures() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(shipped("models", "sam.yaml").read_text())


def _arch(model_type: str) -> dict[str, Any]:
    archs = sam_architectures()
    if model_type not in archs:
        raise ConfigError(f"unknown masks.sam.model_type {model_type!r}; choose one of {sorted(archs)}")
    return archs[model_type]


def check_sam_weights(cfg: SamConfig) -> None:
    """Raise :class:`ModelWeightsError` naming the file to download when no checkpoint is configured."""
    if cfg.checkpoint is None and not cfg.random_weights:
        url = (sam_architectures().get(cfg.model_type) or {}).get("checkpoint_url")
        name = url.rsplit("/", 1)[-1] if url else f"a {cfg.model_type} checkpoint"
        raise ModelWeightsError(f"no SAM checkpoint configured; download {name}"
                                f"{f' from {url}' if url else ''} and set masks.sam.checkpoint=/path/to/{name}")


def build_sam_model(cfg: SamConfig, device: str = "cpu") -> tuple[Any, Optional[str]]:
    """(segment_anything Sam in eval mode on ``device``, checkpoint sha256 or None for random weights)."""
    import torch
    from segment_anything.build_sam import _build_sam

    arch = _arch(cfg.model_type)
    checkpoint_sha: Optional[str] = None
    check_sam_weights(cfg)
    torch.manual_seed(cfg.seed)
    sam = _build_sam(arch["encoder_embed_dim"], arch["encoder_depth"], arch["encoder_num_heads"],
                     list(arch["encoder_global_attn_indexes"]), checkpoint=None)
    if cfg.checkpoint is not None:
        path = resolve_checkpoint(cfg.checkpoint, "masks.sam.checkpoint", cfg.checkpoint_sha256)
        missing, unexpected = sam.load_state_dict(load_state_dict(path), strict=False)
        if missing or unexpected:
            raise ModelWeightsError(f"checkpoint {str(path)!r} does not fit SAM {cfg.model_type} "
                                    f"({len(missing)} missing, {len(unexpected)} unexpected keys); check masks.sam.model_type")
        checkpoint_sha = cfg.checkpoint_sha256 or sha256_file(path)
    return sam.to(device).eval(), checkpoint_sha


def amg_kwargs(cfg: SamConfig) -> dict[str, Any]:
    """The automatic-mask-generation settings shared by both implementations."""
    return dict(
        points_per_side=cfg.points_per_side, points_per_batch=cfg.points_per_batch,
        pred_iou_thresh=cfg.pred_iou_thresh, stability_score_thresh=cfg.stability_score_thresh,
        stability_score_offset=cfg.stability_score_offset, box_nms_thresh=cfg.box_nms_thresh,
        crop_n_layers=cfg.crop_n_layers, crop_nms_thresh=cfg.crop_nms_thresh,
        crop_overlap_ratio=cfg.crop_overlap_ratio,
        crop_n_points_downscale_factor=cfg.crop_n_points_downscale_factor,
        min_mask_region_area=cfg.min_mask_region_area,
    )


def records_to_batch(records: Sequence[dict[str, Any]], image_size: tuple[int, int], source: str) -> MaskBatch:
    """segment-anything's output records (output_mode='coco_rle') -> MaskBatch."""
    h, w = image_size
    crop_boxes = [[r["crop_box"][0], r["crop_box"][1], r["crop_box"][0] + r["crop_box"][2],
                   r["crop_box"][1] + r["crop_box"][3]] for r in records]
    return MaskBatch.from_rles(
        (h, w), [r["segmentation"] for r in records],
        predicted_iou=[r["predicted_iou"] for r in records],
        stability_score=[r["stability_score"] for r in records],
        points=np.asarray([r["point_coords"][0] for r in records], np.float32).reshape(-1, 2),
        crop_boxes=np.asarray(crop_boxes, np.int32).reshape(-1, 4), source=source)


class SamReferenceGenerator:
    """segment-anything's own ``SamAutomaticMaskGenerator``, one image at a time (the baseline)."""

    name = "sam-reference"

    def __init__(self, cfg: SamConfig, device: str = "cpu") -> None:
        from segment_anything import SamAutomaticMaskGenerator

        self.cfg = cfg
        self.model, self.checkpoint_sha256 = build_sam_model(cfg, device)
        self._amg = SamAutomaticMaskGenerator(self.model, output_mode="coco_rle", **amg_kwargs(cfg))

    def generate(self, images: Sequence[np.ndarray], image_ids: Sequence[str] = ()) -> list[MaskBatch]:
        import torch

        out = []
        with torch.inference_mode():
            for image in images:
                records = self._amg.generate(image)
                out.append(records_to_batch(records, image.shape[:2], f"sam:{self.cfg.model_type}"))
        return out

    def describe(self) -> dict[str, object]:
        return {"generator": self.name, "model_type": self.cfg.model_type,
                "checkpoint_sha256": self.checkpoint_sha256, **amg_kwargs(self.cfg)}


def build_sam_generator(cfg: SamConfig, device: str = "cpu") -> MaskGenerator:
    """The configured SAM implementation: 'batched' (ours, default) or 'reference'."""
    if cfg.implementation == "reference":
        return SamReferenceGenerator(cfg, device)
    from ovlabel.engine.masks.sam_batched import SamBatchedGenerator

    return SamBatchedGenerator(cfg, device)
