"""Mask post-processing on the model's device: upscaling, filters, NMS, uncropping, cleanup, RLEs.

Masks are upscaled only for prompts with an output that passes the predicted-IoU filter, the
1024 x 1024 intermediate only over the rows and columns the image covers, and RLEs are encoded
only for masks that survive NMS. :class:`MaskColumns` holds the masks between those steps.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.data import MaskBatch

XYXY = tuple[int, int, int, int]


def upscale_logits(low_res: Tensor, input_size: tuple[int, int], out_size: tuple[int, int], img_size: int) -> Tensor:
    """Sam.postprocess_masks, computing the img_size^2 intermediate only where the image is.

    low_res: (N, 256, 256) -> (N, H, W) float32. Bilinear (align_corners=False) at an exact
    x(img_size/256) scale reads at most rows/cols floor(i/4)+1, so upsampling the covering
    low-res block by the same factor gives the same values over the kept region (bit-identical
    in our tests with 2 threads; PyTorch's kernel can differ by an ulp between layouts).
    """
    lr = low_res.shape[-1]
    factor = img_size // lr
    rows = min(lr, input_size[0] // factor + 2)
    cols = min(lr, input_size[1] // factor + 2)
    x = low_res[:, None, :rows, :cols].float()
    x = F.interpolate(x, (rows * factor, cols * factor), mode="bilinear", align_corners=False)
    x = x[..., : input_size[0], : input_size[1]]
    return F.interpolate(x, out_size, mode="bilinear", align_corners=False)[:, 0]


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str) -> tuple[np.ndarray, bool]:
    """segment-anything's remove_small_regions (8-connectivity); OpenCV when installed, else SciPy.

    mask: (H, W) bool -> (mask, changed).
    """
    try:
        import cv2  # noqa: F401  # type: ignore[import-not-found]
        from segment_anything.utils.amg import remove_small_regions as sam_remove

        return sam_remove(mask, area_thresh, mode)
    except ImportError:
        pass
    from scipy import ndimage

    correct_holes = mode == "holes"
    working = correct_holes ^ mask
    regions, n_labels = ndimage.label(working, structure=np.ones((3, 3), bool))
    sizes = np.bincount(regions.ravel(), minlength=n_labels + 1)[1:]
    small = [i + 1 for i, s in enumerate(sizes) if s < area_thresh]
    if not small:
        return mask, False
    fill = [0, *small]
    if not correct_holes:
        fill = [i for i in range(n_labels + 1) if i not in fill] or [int(np.argmax(sizes)) + 1]
    return np.isin(regions, fill), True


def rle_encode_torch(masks: Tensor) -> list[dict[str, Any]]:
    """(N, H, W) bool on any device -> N COCO RLEs {'size': [H, W], 'counts': str}.

    Run boundaries are found on the device (as segment-anything's mask_to_rle_pytorch), only
    the change indices travel to the host, and pycocotools compresses the counts.
    """
    from pycocotools import mask as mask_utils

    n, h, w = masks.shape
    if n == 0:
        return []
    flat = masks.transpose(1, 2).reshape(n, h * w)
    change = (flat[:, 1:] != flat[:, :-1]).nonzero().cpu().numpy()
    first = flat[:, 0].cpu().numpy()
    per_mask = np.split(change[:, 1] + 1, np.cumsum(np.bincount(change[:, 0], minlength=n))[:-1])
    uncompressed = []
    for starts, lead in zip(per_mask, first):
        counts = np.diff(np.concatenate([[0], starts, [h * w]]))
        uncompressed.append({"size": [h, w], "counts": ([0] if lead else []) + counts.tolist()})
    rles = mask_utils.frPyObjects(uncompressed, h, w)
    return [rle_utils.as_text(r) for r in rles]


def encode_rles(masks: Tensor) -> list[dict[str, Any]]:
    """(N, H, W) bool -> COCO RLEs: pycocotools on CPU tensors, device run-finding on CUDA."""
    if masks.device.type == "cpu":
        return rle_utils.encode_many(masks.numpy())
    return rle_encode_torch(masks)



@dataclass(frozen=True)
class CropFrame:
    """Where one image-encoder input lies: ``box`` (XYXY) in an image of ``image_size`` (H, W).

    img_size: the side of the model's square input.
    """

    box: XYXY
    image_size: tuple[int, int]
    img_size: int

    @property
    def size(self) -> tuple[int, int]:
        """(h, w) of the crop."""
        x0, y0, x1, y1 = self.box
        return y1 - y0, x1 - x0

    @property
    def input_size(self) -> tuple[int, int]:
        """(h, w) of the crop resized into the model's input (its long side img_size), before padding."""
        from segment_anything.utils.transforms import ResizeLongestSide

        return ResizeLongestSide.get_preprocess_shape(*self.size, self.img_size)


@dataclass(frozen=True)
class MaskColumns:
    """Masks of one crop, or of one image after merging its crops (N rows); filtered by :meth:`select`."""

    masks: Tensor        # (N, h, w) bool in crop frame (image frame after merge_crops)
    iou: Tensor          # (N,) float32
    stability: Tensor    # (N,) float32
    points: np.ndarray   # (N, 2) float64 XY in the original image (crop frame before uncrop_coords)
    boxes: Tensor        # (N, 4) int64 XYXY in the original image (crop frame before uncrop_coords)
    crop_boxes: Tensor   # (N, 4) int64 XYXY

    def select(self, keep: Tensor) -> MaskColumns:
        idx = keep.to(self.iou.device)
        return MaskColumns(self.masks[idx], self.iou[idx], self.stability[idx],
                           self.points[keep.cpu().numpy()], self.boxes[idx], self.crop_boxes[idx])

    @classmethod
    def empty(cls, size: tuple[int, int], device: torch.device) -> MaskColumns:
        """No masks; size: (h, w) of the frame."""
        return cls(torch.zeros((0, *size), dtype=torch.bool, device=device),
                   torch.zeros(0, device=device), torch.zeros(0, device=device), np.zeros((0, 2)),
                   torch.zeros((0, 4), dtype=torch.int64, device=device),
                   torch.zeros((0, 4), dtype=torch.int64, device=device))

    @classmethod
    def concat(cls, parts: Sequence[MaskColumns]) -> MaskColumns:
        """Row-wise concatenation of masks in the same frame (at least one part)."""
        return cls(*(np.concatenate([p.points for p in parts]) if f == "points"
                     else torch.cat([getattr(p, f) for p in parts]) for f in _FIELDS))

    def to_batch(self, size: tuple[int, int], source: str) -> MaskBatch:
        """Image-frame masks -> MaskBatch (RLEs encoded here). size: (H, W)."""
        return MaskBatch.from_rles(
            size, encode_rles(self.masks), predicted_iou=self.iou.float().cpu().numpy(),
            stability_score=self.stability.float().cpu().numpy(), points=self.points.astype(np.float32),
            crop_boxes=self.crop_boxes.cpu().numpy(), source=source)


_FIELDS = ("masks", "iou", "stability", "points", "boxes", "crop_boxes")


def masks_from_logits(logits: Tensor, iou: Tensor, points: np.ndarray, frame: CropFrame, mask_threshold: float,
                      stability_score_offset: float, stability_score_thresh: float) -> MaskColumns:
    """Upscale low-res logits (K, 256, 256) to the crop, stability filter, threshold, box, edge filter.

    iou: (K,); points: (K, 2) XY in the crop frame.
    """
    from segment_anything.utils.amg import batched_mask_to_box, calculate_stability_score, is_box_near_crop_edge

    full = upscale_logits(logits, frame.input_size, frame.size, frame.img_size)
    stability = calculate_stability_score(full, mask_threshold, stability_score_offset)
    keep = stability >= stability_score_thresh if stability_score_thresh > 0.0 else None
    if keep is not None:
        full, iou, stability, points = full[keep], iou[keep], stability[keep], points[keep.cpu().numpy()]
    masks = full > mask_threshold
    boxes = batched_mask_to_box(masks)
    edge = ~is_box_near_crop_edge(boxes, list(frame.box), [0, 0, frame.image_size[1], frame.image_size[0]])
    crop_boxes = torch.zeros((len(iou), 4), dtype=torch.int64, device=iou.device)
    data = MaskColumns(masks, iou, stability, points, boxes, crop_boxes)
    return data if bool(edge.all()) else data.select(edge)


def box_nms(data: MaskColumns, scores: Tensor, iou_threshold: float) -> MaskColumns:
    """The rows that survive box NMS by ``scores`` (N,), in NMS order."""
    from torchvision.ops.boxes import batched_nms

    keep = batched_nms(data.boxes.float(), scores, torch.zeros(len(data.boxes), device=scores.device),
                       iou_threshold=iou_threshold)
    return data.select(keep)


def uncrop_coords(data: MaskColumns, crop_box: XYXY, device: torch.device) -> MaskColumns:
    """Boxes and points of a crop's masks into the image frame, each row tagged with ``crop_box``.

    The masks stay in the crop frame (see :func:`merge_crops`).
    """
    from segment_anything.utils.amg import uncrop_boxes_xyxy

    x0, y0 = crop_box[0], crop_box[1]
    return replace(data, boxes=uncrop_boxes_xyxy(data.boxes, list(crop_box)), points=data.points + np.array([[x0, y0]]),
                   crop_boxes=torch.tensor([crop_box], dtype=torch.int64, device=device).repeat(len(data.iou), 1))


def merge_crops(crops: Sequence[tuple[XYXY, MaskColumns]], size: tuple[int, int], device: torch.device,
                crop_nms_thresh: float) -> MaskColumns:
    """Per-crop results of one image -> its masks in the image frame (N, H, W), NMS across crops.

    size: (H, W). Smaller crops win (scores 1 / crop box area), as segment-anything.
    """
    from torchvision.ops.boxes import box_area

    if not crops:
        return MaskColumns.empty(size, device)
    data = MaskColumns.concat([replace(part, masks=_uncrop(part.masks, box, size)) for box, part in crops])
    if len(crops) == 1:
        return data
    return box_nms(data, (1 / box_area(data.crop_boxes)).to(data.boxes.device), crop_nms_thresh)


def _uncrop(masks: Tensor, crop_box: XYXY, size: tuple[int, int]) -> Tensor:
    """(N, h, w) crop-frame masks -> (N, H, W) image-frame masks (zero padded, as uncrop_masks)."""
    h, w = size
    x0, y0, x1, y1 = crop_box
    if (x0, y0, x1, y1) == (0, 0, w, h):
        return masks
    return F.pad(masks, (x0, w - x1, y0, h - y1), value=False)


def clean_small_regions(data: MaskColumns, area: int, iou_threshold: float, device: torch.device) -> MaskColumns:
    """SamAutomaticMaskGenerator.postprocess_small_regions: fill holes, drop islands, re-NMS.

    area: min_mask_region_area; iou_threshold: max(box_nms_thresh, crop_nms_thresh).
    """
    from segment_anything.utils.amg import batched_mask_to_box
    from torchvision.ops.boxes import batched_nms

    cleaned, scores = [], []
    for mask in data.masks.cpu().numpy():
        mask, changed_holes = remove_small_regions(mask, area, mode="holes")
        mask, changed_islands = remove_small_regions(mask, area, mode="islands")
        cleaned.append(torch.as_tensor(mask))
        scores.append(float(not (changed_holes or changed_islands)))
    masks = torch.stack(cleaned)
    boxes = batched_mask_to_box(masks)
    keep = batched_nms(boxes.float(), torch.as_tensor(scores), torch.zeros(len(boxes)), iou_threshold=iou_threshold)
    changed = torch.as_tensor(scores) == 0.0
    data = replace(data, masks=masks.to(device),
                   boxes=torch.where(changed[:, None], boxes, data.boxes.cpu()).to(device))
    return data.select(keep.to(device))
