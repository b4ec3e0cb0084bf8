"""Dense region embeddings (``matching.crop_mode=dense``): one CLIP image forward per image, patch features
pooled inside each mask, after MaskCLIP (Zhou et al., ECCV 2022, "Extract Free Dense Labels from CLIP").

The image is resized so its long side is ``clip.dense_resolution`` (None: :data:`DENSE_SCALE` x the model's
input size), padded with the model's mean colour to whole patches, and run through an open_clip
``VisionTransformer`` whose positional embedding is resized to that grid (bicubic, as open_clip's
``resize_pos_embed``). In the last block, the query-key attention is skipped: token i becomes
``x_i + out_proj(v_i)`` (v_i its value projection), then the block's MLP with its residual, as MaskCLIP's
ViT does; ``ln_post`` and ``proj`` then give a (Gh, Gw, D) grid of patch embeddings in the joint space.

A mask's embedding is the mean of the L2-normalised patch embeddings weighted by the fraction of each
patch the mask covers (an exact area resize of the mask to the grid, :func:`coverage`), L2-normalised;
weights that sum to zero fall back to the patch holding the mask's centroid. Only plain open_clip ViT
towers qualify (:func:`dense_refusal`, :func:`check_dense_tower`).

Shapes: image (H, W, 3) uint8; masks (H, W) bool; canvas (Gh * p, Gw * p); grid (Gh, Gw, D);
weights (M, Gh, Gw); region embeddings (M, D) float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional, Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks.data import MaskBatch

if TYPE_CHECKING:
    import torch

DENSE_MODE = "dense"
DENSE_SCALE = 2  # clip.dense_resolution None: this many times the model's input size (see README)
_CUSTOM_BLOCK_KEYS = ("qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn", "scale_fc")


@runtime_checkable
class DenseEmbedder(Protocol):
    """What ``crop_mode=dense`` asks of a :class:`~ovlabel.engine.matching.embedder.RegionEmbedder`:
    ``embed_masks(image, masks)``, (H, W, 3) uint8 and M masks -> (M, D) L2-normalised float32."""

    def embed_masks(self, image: np.ndarray, masks: MaskBatch) -> np.ndarray: ...


def _refuse(model: str, what: str) -> ConfigError:
    return ConfigError(f"matching.crop_mode=dense needs a ViT image tower; open_clip model {model!r} has {what}: "
                       f"choose a ViT model (e.g. clip.model=ViT-B-16) or matching.crop_mode=masked")


def dense_refusal(model: str, vision_cfg: Mapping[str, Any]) -> Optional[ConfigError]:
    """The error for an open_clip ``vision_cfg`` (its model JSON's) that dense mode cannot run, else None."""
    if vision_cfg.get("timm_model_name"):
        return _refuse(model, f"a timm tower ({vision_cfg['timm_model_name']})")
    if isinstance(vision_cfg.get("layers"), (list, tuple)):
        return _refuse(model, "a ResNet tower")
    if vision_cfg.get("attentional_pool"):
        return _refuse(model, "an attentional pooler")
    if vision_cfg.get("block_type") == "custom" or any(vision_cfg.get(k) for k in _CUSTOM_BLOCK_KEYS):
        return _refuse(model, "custom attention blocks")
    return None


def check_dense_tower(visual: Any, model: str) -> None:
    """Raise :class:`ConfigError` unless ``visual`` is an open_clip VisionTransformer dense mode can run."""
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    if not isinstance(visual, VisionTransformer):
        raise _refuse(model, f"a {type(visual).__name__} tower")
    if visual.attn_pool is not None or visual.proj is None:
        raise _refuse(model, "an attentional pooler or no projection")
    if not all(isinstance(b, ResidualAttentionBlock) for b in visual.transformer.resblocks):
        raise _refuse(model, "custom attention blocks")


@dataclass(frozen=True)
class Frame:
    """Where an (H, W) image lies on its canvas: pixel (y, x) covers [oy + y * sy, oy + (y + 1) * sy) x
    [ox + x * sx, ...) of a (grid[0] * patch, grid[1] * patch) canvas."""

    image_size: tuple[int, int]
    resized: tuple[int, int]  # (h, w) of the image on the canvas
    offset: tuple[int, int]  # (oy, ox)
    patch: int
    grid: tuple[int, int]  # (Gh, Gw)

    @classmethod
    def fit(cls, image_size: tuple[int, int], resolution: int, patch: int) -> "Frame":
        """The image resized so its long side is ``resolution``, centred on a canvas of whole patches."""
        h, w = image_size
        scale = resolution / max(h, w)
        rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
        grid = (math.ceil(rh / patch), math.ceil(rw / patch))
        return cls((h, w), (rh, rw), ((grid[0] * patch - rh) // 2, (grid[1] * patch - rw) // 2), patch, grid)

    def axis_weights(self, axis: int) -> np.ndarray:
        """(G, N) float32: the fraction of grid line g's patch span that image line n covers, along ``axis``."""
        n, size, off = self.image_size[axis], self.resized[axis], self.offset[axis]
        edges = off + np.arange(n + 1) * (size / n)  # canvas coordinates of the pixel edges
        cells = np.arange(self.grid[axis] + 1) * self.patch
        lo = np.maximum(edges[None, :-1], cells[:-1, None])
        hi = np.minimum(edges[None, 1:], cells[1:, None])
        return (np.clip(hi - lo, 0, None) / self.patch).astype(np.float32)

    def cell_of(self, y: float, x: float) -> tuple[int, int]:
        """The grid cell holding image point (y, x) (pixel centres at +0.5)."""
        sy, sx = self.resized[0] / self.image_size[0], self.resized[1] / self.image_size[1]
        gy = int((self.offset[0] + (y + 0.5) * sy) // self.patch)
        gx = int((self.offset[1] + (x + 0.5) * sx) // self.patch)
        return min(gy, self.grid[0] - 1), min(gx, self.grid[1] - 1)


def canvas(image: np.ndarray, frame: Frame, fill: Sequence[int]) -> np.ndarray:
    """(Gh * p, Gw * p, 3) uint8: ``image`` resized (bicubic) and centred on ``fill``."""
    out = np.empty((frame.grid[0] * frame.patch, frame.grid[1] * frame.patch, 3), np.uint8)
    out[:] = np.asarray(fill, np.uint8)
    h, w = frame.resized
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((w, h), Image.BICUBIC))
    oy, ox = frame.offset
    out[oy:oy + h, ox:ox + w] = resized
    return out


def coverage(masks: MaskBatch, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """((M, Gh, Gw) float32 fraction of each patch each mask covers, (M, 2) int cell of each mask's centroid)."""
    wy, wx = frame.axis_weights(0), frame.axis_weights(1)
    weights = np.zeros((len(masks), *frame.grid), np.float32)
    cells = np.zeros((len(masks), 2), np.int64)
    for i in range(len(masks)):
        mask = masks.decode(i)
        ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(ys) == 0:
            raise ValueError(f"mask {i} is empty: dense mode has nothing to pool")
        y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
        inside = mask[y0:y1, x0:x1].astype(np.float32)
        weights[i] = wy[:, y0:y1] @ inside @ wx[:, x0:x1].T
        rows, cols = inside.sum(axis=1), inside.sum(axis=0)
        cells[i] = frame.cell_of(y0 + float(rows @ np.arange(len(rows))) / float(rows.sum()),
                                 x0 + float(cols @ np.arange(len(cols))) / float(cols.sum()))
    return weights, cells


def pool(grid: np.ndarray, weights: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """(Gh, Gw, D) L2-normalised patch embeddings, (M, Gh, Gw) weights, (M, 2) fallback cells -> (M, D)
    L2-normalised weighted means; a row of weights summing to zero takes its fallback cell's embedding."""
    flat = weights.reshape(len(weights), -1).astype(np.float32)
    empty = flat.sum(axis=1) <= 0
    if empty.any():
        flat[empty] = 0.0
        flat[np.flatnonzero(empty), cells[empty, 0] * grid.shape[1] + cells[empty, 1]] = 1.0
    pooled = flat @ grid.reshape(-1, grid.shape[-1]).astype(np.float32)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def resized_pos_embed(pos: torch.Tensor, native: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """(1 + Nh * Nw, C) positional embedding (class token first) -> (1 + Gh * Gw, C), the patch part resized
    bicubic with antialias, as open_clip's ``model.resize_pos_embed`` (unchanged when ``grid == native``). The
    resize runs in float32 (a CPU has no bf16 antialiased bicubic) and returns ``pos``'s dtype."""
    import torch

    if tuple(grid) == tuple(native):
        return pos
    patches = pos[1:].float().reshape(1, native[0], native[1], -1).permute(0, 3, 1, 2)  # float32: CPU bicubic
    patches = torch.nn.functional.interpolate(patches, size=grid, mode="bicubic", antialias=True, align_corners=False)
    return torch.cat([pos[:1], patches.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1).to(pos.dtype)])


def value_path(block: Any, x: torch.Tensor) -> torch.Tensor:
    """MaskCLIP's last block on (B, L, C) tokens: ``y = x + ls_1(out_proj(v))`` with v the value projection of
    ``ln_1(x)`` (no query-key attention), then ``y + ls_2(mlp(ln_2(y)))``."""
    from ovlabel.engine.packed import value_projection

    y = x + block.ls_1(block.attn.out_proj(value_projection(block.attn, block.ln_1(x))))
    return y + block.ls_2(block.mlp(block.ln_2(y)))


def patch_embeddings(visual: Any, pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, Gh * p, Gw * p) normalised pixels -> (B, Gh, Gw, D) patch embeddings (not normalised) of an
    open_clip VisionTransformer ``visual`` (see the module docstring)."""
    import torch

    x = visual.conv1(pixels)  # (B, C, Gh, Gw)
    b, c, gh, gw = x.shape
    x = x.reshape(b, c, gh * gw).permute(0, 2, 1)
    x = torch.cat([visual.class_embedding.to(x.dtype).expand(b, 1, c), x], dim=1)
    x = visual.ln_pre(x + resized_pos_embed(visual.positional_embedding, visual.grid_size, (gh, gw)).to(x.dtype))
    transformer = visual.transformer
    x = x if transformer.batch_first else x.transpose(0, 1)
    for block in transformer.resblocks[:-1]:
        x = block(x)
    x = x if transformer.batch_first else x.transpose(0, 1)
    x = visual.ln_post(value_path(transformer.resblocks[-1], x)[:, 1:])
    return (x @ visual.proj).reshape(b, gh, gw, -1)


def grid_embeddings(visual: Any, pixels: torch.Tensor, flip_average: bool = False) -> torch.Tensor:
    """(1, 3, Gh * p, Gw * p) normalised pixels -> (Gh, Gw, D) float32 L2-normalised patch embeddings; with
    ``flip_average`` the normalised mean of the image's and its mirror image's (one forward of both, the
    mirror's grid mirrored back)."""
    import torch

    x = torch.cat([pixels, pixels.flip(-1)]) if flip_average else pixels
    grid = torch.nn.functional.normalize(patch_embeddings(visual, x).float(), dim=-1)
    if flip_average:
        grid = torch.nn.functional.normalize(grid[:1] + grid[1:].flip(2), dim=-1)
    return grid[0]


def embed_masks(embedder: Any, image: np.ndarray, masks: MaskBatch) -> np.ndarray:
    """(H, W, 3) uint8 image and its M masks -> (M, D) float32 region embeddings through an
    :class:`~ovlabel.engine.matching.embedder.OpenClipEmbedder`'s ViT: one image forward, patches pooled per mask."""
    import torch

    check_dense_tower(embedder.model.visual, embedder.cfg.model)
    if len(masks) == 0:
        return np.zeros((0, embedder.embed_dim), np.float32)
    frame = Frame.fit(image.shape[:2], embedder.dense_resolution, int(embedder.model.visual.patch_size[0]))
    fill = np.round(embedder._mean.flatten().cpu().numpy()).astype(np.uint8)
    x = embedder._pixels(canvas(image, frame, fill)[None])
    with torch.inference_mode(), embedder._autocast():
        grid = grid_embeddings(embedder.model.visual, x, embedder.cfg.flip_average).cpu().numpy()
    work = getattr(embedder, "work", None)
    if work is not None:  # one image forward (two with flip averaging): encoder work, no padding
        work.add(1, 1, 2 if embedder.cfg.flip_average else 1)
    return pool(grid, *coverage(masks, frame))
