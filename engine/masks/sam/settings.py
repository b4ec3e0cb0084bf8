"""The automatic-mask-generation settings shared by both SAM generators."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class AmgSettings:
    """segment-anything's ``SamAutomaticMaskGenerator`` settings, with its defaults.

    Both generators take these as keyword arguments and report them in ``describe()`` in this order.
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0

    def as_kwargs(self) -> dict[str, object]:
        """The settings as keyword arguments of segment-anything's generator (and provenance)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
