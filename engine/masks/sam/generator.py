"""Our batched automatic mask generation on segment-anything's SAM model.

Same algorithm, defaults and outputs as segment-anything's ``SamAutomaticMaskGenerator`` (a point
grid per crop, the 3 multimask outputs per point, predicted-IoU and stability filters, crop-edge
filter, box NMS within and across crops, optional small-region cleanup), organised for throughput:

* several images (or crops) per image-encoder batch (``encoder_batch_size``); no ``SamPredictor``;
* the encoder attention written out (:mod:`.encoder`);
* a mask decoder that shares the prompt-independent image side (:mod:`.decoder`);
* masks upscaled, filtered and RLE-encoded only as far as needed (:mod:`.postprocess`).

The equivalence to segment-anything is tested in ``tests/engine/masks/sam/`` and measured by
``scripts/bench_sam.py``.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, ContextManager, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.masks.sam.decoder import ImageSide, SharedImageDecoder
from ovlabel.engine.masks.sam.encoder import encode_images, preprocess
from ovlabel.engine.masks.sam.postprocess import (
    XYXY,
    CropFrame,
    MaskColumns,
    box_nms,
    clean_small_regions,
    masks_from_logits,
    merge_crops,
    uncrop_coords,
)
from ovlabel.engine.masks.sam.settings import AmgSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Chunks:
    """How much work runs at once (bounds temporary memory; points_per_batch still groups prompts)."""

    transformer_points: int      # prompts through the two-way transformer (~20 MB fp32 each)
    upscale_points: int          # prompts through the upscaling convs (~30 MB fp32 each)
    post_elements: int           # logits upsampled at once (1024^2 intermediate + output), in floats


_CPU_CHUNKS = _Chunks(transformer_points=64, upscale_points=16, post_elements=1 << 25)
_CUDA_CHUNKS = _Chunks(transformer_points=1 << 30, upscale_points=128, post_elements=1 << 28)


@dataclass(frozen=True)
class _Job:
    """One image-encoder input: an image or one of its crops."""

    image_index: int
    crop_box: XYXY
    layer: int


def _crop_jobs(images: Sequence[np.ndarray], crop_n_layers: int, crop_overlap_ratio: float) -> list[_Job]:
    """segment-anything's crop boxes of every image, image by image."""
    from segment_anything.utils.amg import generate_crop_boxes

    jobs = []
    for i, image in enumerate(images):
        boxes, layers = generate_crop_boxes(image.shape[:2], crop_n_layers, crop_overlap_ratio)
        jobs += [_Job(i, tuple(int(v) for v in box), layer) for box, layer in zip(boxes, layers)]  # type: ignore[misc]
    return jobs


def _groups(jobs: Sequence[_Job], size: int) -> Iterator[list[_Job]]:
    for s in range(0, len(jobs), size):
        yield list(jobs[s:s + size])


def _crop(image: np.ndarray, box: XYXY) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1, :]


class SamBatchedGenerator:
    """Automatic mask generation equivalent to segment-anything's, batched (see module docstring).

    ``model``: a segment_anything Sam on ``device``, in eval mode. ``amg``: the settings of
    :class:`AmgSettings` (``points_per_side=...``, as segment-anything's generator takes them).
    ``encoder_batch_size``: images or crops per image-encoder call. ``autocast`` (bf16 autocast, CUDA only) and
    ``sdpa`` (fused encoder attention) default to on for CUDA and off elsewhere. An image encoder whose
    weights are bf16 (what :func:`~ovlabel.engine.masks.sam.build.batched_generator` makes of bf16 on a CPU)
    is fed bf16 pixels; its embeddings go on in fp32.
    ``model_type`` and ``checkpoint_sha256`` are provenance (``describe()``, the batches' source).
    """

    name = "sam-batched"

    def __init__(self, model: Any, *, model_type: str, checkpoint_sha256: Optional[str] = None,
                 encoder_batch_size: int = 4, device: str = "cpu", autocast: Optional[bool] = None,
                 sdpa: Optional[bool] = None, **amg: Any) -> None:
        from segment_anything.utils.amg import build_all_layer_point_grids
        from segment_anything.utils.transforms import ResizeLongestSide

        self.settings = AmgSettings(**amg)
        self.model, self.model_type, self.checkpoint_sha256 = model, model_type, checkpoint_sha256
        self.encoder_batch_size = encoder_batch_size
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        self.autocast = cuda if autocast is None else autocast and cuda
        self._encoder_dtype = next(model.image_encoder.parameters()).dtype
        self.sdpa = cuda if sdpa is None else sdpa
        self.img_size = int(model.image_encoder.img_size)
        self.transform = ResizeLongestSide(self.img_size)
        self.point_grids = build_all_layer_point_grids(self.settings.points_per_side, self.settings.crop_n_layers,
                                                       self.settings.crop_n_points_downscale_factor)
        self.decoder = SharedImageDecoder(model)
        self._chunks = _CUDA_CHUNKS if cuda else _CPU_CHUNKS

    def generate(self, images: Sequence[np.ndarray], image_ids: Sequence[str] = ()) -> list[MaskBatch]:
        """images: (H, W, 3) uint8 RGB, sizes may differ -> one MaskBatch per image."""
        jobs = _crop_jobs(images, self.settings.crop_n_layers, self.settings.crop_overlap_ratio)
        per_image: list[list[tuple[XYXY, MaskColumns]]] = [[] for _ in images]
        with torch.inference_mode():
            for group in _groups(jobs, self.encoder_batch_size):
                for job, embedding in zip(group, self._encode(images, group)):
                    masks = self._process_crop(images[job.image_index], job, embedding)
                    per_image[job.image_index].append((job.crop_box, masks))
            out = [self._finish(image, crops) for image, crops in zip(images, per_image)]
        log.debug("%d images, %d encoder inputs -> %s masks", len(images), len(jobs), [len(b) for b in out])
        return out

    def describe(self) -> dict[str, object]:
        return {"generator": self.name, "model_type": self.model_type,
                "checkpoint_sha256": self.checkpoint_sha256, **self.settings.as_kwargs(),
                "encoder_batch_size": self.encoder_batch_size,
                "precision": self._precision(),
                "attention": "sdpa" if self.sdpa else "exact"}

    def _precision(self) -> str:
        if self.autocast:
            return "bf16-autocast"
        return "fp32" if self._encoder_dtype == torch.float32 else "bf16-encoder-weights"

    def _amp(self) -> ContextManager[Any]:
        if self.autocast:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _encode(self, images: Sequence[np.ndarray], group: Sequence[_Job]) -> Tensor:
        """Crops of ``group`` -> embeddings (B, 256, 64, 64)."""
        batch = torch.cat([preprocess(self.model, self.transform, _crop(images[j.image_index], j.crop_box), self.device)
                           for j in group])
        with self._amp():
            return encode_images(self.model, batch.to(self._encoder_dtype), self.sdpa).float()

    def _process_crop(self, image: np.ndarray, job: _Job, embedding: Tensor) -> MaskColumns:
        """Masks of one crop after in-crop NMS, in the original image frame (boxes, points)."""
        frame = CropFrame(job.crop_box, image.shape[:2], self.img_size)
        points = self.point_grids[job.layer] * np.array(frame.size)[None, ::-1]
        with self._amp():
            side = self.decoder.image_side(embedding[None])
        step = self.settings.points_per_batch
        data = MaskColumns.concat([self._process_points(side, points[s:s + step], frame)
                                   for s in range(0, len(points), step)])
        return uncrop_coords(box_nms(data, data.iou, self.settings.box_nms_thresh), job.crop_box, self.device)

    def _process_points(self, side: ImageSide, points: np.ndarray, frame: CropFrame) -> MaskColumns:
        """One point batch: decode, filter by predicted IoU, upscale the survivors, filter, box.

        points: (P, 2) float64 XY in the crop frame.
        """
        step = self._chunks.transformer_points
        decoded = [self._decode(side, points[s:s + step], frame.size) for s in range(0, len(points), step)]
        logits = torch.cat([d[0] for d in decoded])
        iou, pts = torch.cat([d[1] for d in decoded]), np.concatenate([d[2] for d in decoded])
        if len(logits) == 0:
            return MaskColumns.empty(frame.size, self.device)
        step = max(1, self._chunks.post_elements // (frame.size[0] * frame.size[1] + self.img_size ** 2))
        return MaskColumns.concat([
            masks_from_logits(logits[s:s + step], iou[s:s + step], pts[s:s + step], frame, self.model.mask_threshold,
                              self.settings.stability_score_offset, self.settings.stability_score_thresh)
            for s in range(0, len(logits), step)])

    def _decode(self, side: ImageSide, points: np.ndarray, crop_size: tuple[int, int]
                ) -> tuple[Tensor, Tensor, np.ndarray]:
        """Point prompts (P, 2) -> (low-res logits (K, 256, 256), IoU (K,), points (K, 2)) of the
        outputs passing the predicted-IoU filter, point-major as segment-anything flattens them."""
        coords = torch.as_tensor(self.transform.apply_coords(points, crop_size), device=self.device)
        with self._amp():
            logits, iou, keep, alive = self.decoder.decode(side, coords, self.settings.pred_iou_thresh,
                                                           self._chunks.upscale_points)
        flat_keep = keep[alive].reshape(-1)
        pts = np.repeat(points[alive.cpu().numpy()], iou.shape[1], axis=0)[flat_keep.cpu().numpy()]
        return logits.flatten(0, 1)[flat_keep], iou[alive].reshape(-1)[flat_keep], pts

    def _finish(self, image: np.ndarray, crops: Sequence[tuple[XYXY, MaskColumns]]) -> MaskBatch:
        """Merge crops (crop NMS), clean small regions, encode RLEs -> MaskBatch."""
        size = (int(image.shape[0]), int(image.shape[1]))
        data = merge_crops(crops, size, self.device, self.settings.crop_nms_thresh)
        if self.settings.min_mask_region_area > 0 and len(data.iou):
            data = clean_small_regions(data, self.settings.min_mask_region_area,
                                       max(self.settings.box_nms_thresh, self.settings.crop_nms_thresh), self.device)
        return data.to_batch(size, f"sam:{self.model_type}")
