"""segment-anything's own ``SamAutomaticMaskGenerator`` behind the MaskGenerator protocol (the baseline)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.masks.sam.settings import AmgSettings


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
    """segment-anything's ``SamAutomaticMaskGenerator``, one image at a time.

    ``model``: a segment_anything Sam; ``amg``: the settings of :class:`AmgSettings`;
    ``model_type`` and ``checkpoint_sha256`` are provenance.
    """

    name = "sam-reference"

    def __init__(self, model: Any, *, model_type: str, checkpoint_sha256: Optional[str] = None, **amg: Any) -> None:
        from segment_anything import SamAutomaticMaskGenerator

        self.settings = AmgSettings(**amg)
        self.model, self.model_type, self.checkpoint_sha256 = model, model_type, checkpoint_sha256
        self._generator = SamAutomaticMaskGenerator(model, output_mode="coco_rle", **self.settings.as_kwargs())

    def generate(self, images: Sequence[np.ndarray], image_ids: Sequence[str] = ()) -> list[MaskBatch]:
        import torch

        out = []
        with torch.inference_mode():
            for image in images:
                records = self._generator.generate(image)
                out.append(records_to_batch(records, image.shape[:2], f"sam:{self.model_type}"))
        return out

    def describe(self) -> dict[str, object]:
        return {"generator": self.name, "model_type": self.model_type,
                "checkpoint_sha256": self.checkpoint_sha256, **self.settings.as_kwargs()}
