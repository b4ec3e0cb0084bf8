"""segment-anything's generator behind our protocol: its records -> MaskBatch, provenance."""
from __future__ import annotations

import numpy as np

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.sam import SamBatchedGenerator, SamReferenceGenerator
from ovlabel.engine.masks.sam.reference import records_to_batch
from tests.engine.masks.sam.helpers import SCENES


def test_records_to_batch_converts_crop_boxes_to_xyxy() -> None:
    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:5] = True
    record = {"segmentation": rle_utils.encode(mask), "predicted_iou": 0.5, "stability_score": 0.25,
              "point_coords": [[3.0, 2.0]], "crop_box": [2, 1, 4, 3]}
    batch = records_to_batch([record], (6, 8), "sam:vit_tiny")
    assert len(batch) == 1 and batch.source == "sam:vit_tiny" and batch.image_size == (6, 8)
    assert batch.crop_boxes.tolist() == [[2, 1, 6, 4]] and batch.points.tolist() == [[3.0, 2.0]]
    assert batch.areas.tolist() == [6] and batch.predicted_iou.tolist() == [0.5]
    assert len(records_to_batch([], (6, 8), "")) == 0


def test_reference_generates_and_describes(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    ref = pair[0]
    [batch] = ref.generate(SCENES[:1])
    assert batch.source == "sam:vit_tiny" and len(batch)
    info = ref.describe()
    assert info["generator"] == "sam-reference" and info["points_per_side"] == 3 and "encoder_batch_size" not in info
