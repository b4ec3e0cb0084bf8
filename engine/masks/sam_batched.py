"""Our batched automatic mask generation on segment-anything's SAM model.

Same algorithm, defaults and outputs as segment-anything's ``SamAutomaticMaskGenerator`` (a point
grid per crop, the 3 multimask outputs per point, predicted-IoU and stability filters, crop-edge
filter, box NMS within and across crops, optional small-region cleanup), organised for throughput:

* several images (or crops) per image-encoder batch (``image_batch_size``); no ``SamPredictor``;
* the encoder attention written out: fp32 and chunked over heads on CPU (bounded memory, same
  arithmetic as segment-anything), ``scaled_dot_product_attention`` with the relative-position
  bias under bf16 autocast on CUDA;
* a mask decoder that shares the prompt-independent image side (layer-0 keys, values and
  queries are computed once per image, not once per prompt) and folds the per-head projections
  into the few prompt tokens, so the per-prompt work on the 64x64 grid is about a third of
  segment-anything's; the same arithmetic reordered, so fp32 results agree to float rounding;
* masks are upscaled only for prompts with an output that passes the predicted-IoU filter,
  the 1024 x 1024 intermediate only over the rows and columns the image covers, and RLEs are
  encoded only for masks that survive NMS.

The equivalence to segment-anything is tested in ``tests/engine/masks/test_sam_batched.py`` and
measured by ``scripts/bench_sam.py``.
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Any, ContextManager, Iterator, NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.masks.sam import amg_kwargs, build_sam_model

log = logging.getLogger(__name__)

XYXY = tuple[int, int, int, int]

# Bounds on temporary memory (elements) for the CPU paths; CUDA uses larger chunks.
_CPU_ATTN_ELEMENTS = 1 << 26     # encoder attention scores held at once (256 MB fp32)


@dataclass(frozen=True)
class _Chunks:
    """How much work runs at once (bounds temporary memory; points_per_batch still groups prompts)."""

    transformer_points: int      # prompts through the two-way transformer (~20 MB fp32 each)
    upscale_points: int          # prompts through the upscaling convs (~30 MB fp32 each)
    post_elements: int           # logits upsampled at once (1024^2 intermediate + output), in floats


_CPU_CHUNKS = _Chunks(transformer_points=64, upscale_points=16, post_elements=1 << 25)
_CUDA_CHUNKS = _Chunks(transformer_points=1 << 30, upscale_points=128, post_elements=1 << 28)


# ---------------------------------------------------------------------------------------------
# Random-weight helper (tests and benchmarks)
# ---------------------------------------------------------------------------------------------

def make_random_sam_coherent(model: Any, logit_scale: float = 30.0) -> None:
    """Make a random-weight SAM produce spatially coherent masks (tests and benchmarks only).

    With default random init the decoder's 2x2 transposed convolutions turn every low-res cell
    into a checkerboard, so masks are speckle noise. Tying each kernel's 4 taps makes them a
    nearest-neighbour upsampling (masks then follow the encoder features, i.e. the image's
    shapes), and ``logit_scale`` scales the hypernetwork outputs so logits reach the +-1
    stability offset. Edits ``model`` in place; apply the same call to every model compared.
    """
    dec = model.mask_decoder
    with torch.no_grad():
        for module in dec.output_upscaling:
            if isinstance(module, nn.ConvTranspose2d):
                module.weight.copy_(module.weight[:, :, :1, :1].expand_as(module.weight))
        for mlp in dec.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(logit_scale)
            mlp.layers[-1].bias.mul_(logit_scale)


# ---------------------------------------------------------------------------------------------
# Image encoder
# ---------------------------------------------------------------------------------------------

def _rel_pos_terms(attn_mod: nn.Module, q: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """segment-anything's decomposed relative-position terms.

    q: (B, H*W, d) -> rel_h (B, H, W, H), rel_w (B, H, W, W).
    """
    from segment_anything.modeling.image_encoder import get_rel_pos

    h, w = size
    r_q = q.reshape(q.shape[0], h, w, q.shape[-1])
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, get_rel_pos(h, h, attn_mod.rel_pos_h))
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, get_rel_pos(w, w, attn_mod.rel_pos_w))
    return rel_h, rel_w


def _attention_exact(attn_mod: nn.Module, q: Tensor, k: Tensor, v: Tensor, size: tuple[int, int]) -> Tensor:
    """segment-anything's attention arithmetic, chunked over (batch x head) to bound memory.

    q, k, v: (B*heads, H*W, d) -> (B*heads, H*W, d).
    """
    n, hw, _ = q.shape
    step = max(1, _CPU_ATTN_ELEMENTS // (hw * hw))
    out = torch.empty_like(v)
    for s in range(0, n, step):
        qc = q[s:s + step]
        scores = (qc * attn_mod.scale) @ k[s:s + step].transpose(-2, -1)
        if attn_mod.use_rel_pos:
            rel_h, rel_w = _rel_pos_terms(attn_mod, qc, size)
            view = scores.view(len(qc), size[0], size[1], size[0], size[1])
            view.add_(rel_h[:, :, :, :, None]).add_(rel_w[:, :, :, None, :])
        out[s:s + step] = scores.softmax(dim=-1) @ v[s:s + step]
    return out


def _attention_sdpa(attn_mod: nn.Module, q: Tensor, k: Tensor, v: Tensor, size: tuple[int, int]) -> Tensor:
    """Fused attention with the relative-position bias as an additive mask.

    q, k, v: (B*heads, H*W, d) -> (B*heads, H*W, d); run as (B, heads, H*W, d) so CUDA can pick
    the memory-efficient kernel (it takes an arbitrary additive bias).
    """
    n, hw, d = q.shape
    heads = attn_mod.num_heads
    bias: Optional[Tensor] = None
    if attn_mod.use_rel_pos:
        rel_h, rel_w = _rel_pos_terms(attn_mod, q, size)
        bias = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(n // heads, heads, hw, hw).to(q.dtype)
    split = (n // heads, heads, hw, d)
    out = F.scaled_dot_product_attention(q.view(split), k.view(split), v.view(split), attn_mask=bias)
    return out.reshape(n, hw, d)


def _encoder_attention(attn_mod: nn.Module, x: Tensor, sdpa: bool) -> Tensor:
    """segment_anything.modeling.image_encoder.Attention.forward. x: (B, H, W, C) -> same."""
    b, h, w, _ = x.shape
    heads = attn_mod.num_heads
    qkv = attn_mod.qkv(x).reshape(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, b * heads, h * w, -1).unbind(0)
    out = (_attention_sdpa if sdpa else _attention_exact)(attn_mod, q, k, v, (h, w))
    out = out.view(b, heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return attn_mod.proj(out)


def _encoder_block(blk: nn.Module, x: Tensor, sdpa: bool) -> Tensor:
    """segment_anything.modeling.image_encoder.Block.forward. x: (B, 64, 64, C) -> same."""
    from segment_anything.modeling.image_encoder import window_partition, window_unpartition

    shortcut = x
    x = blk.norm1(x)
    if blk.window_size > 0:
        h, w = x.shape[1], x.shape[2]
        x, pad_hw = window_partition(x, blk.window_size)
        x = _encoder_attention(blk.attn, x, sdpa)
        x = window_unpartition(x, blk.window_size, pad_hw, (h, w))
    else:
        x = _encoder_attention(blk.attn, x, sdpa)
    x = shortcut + x
    return x + blk.mlp(blk.norm2(x))


def encode_images(model: Any, batch: Tensor, sdpa: bool) -> Tensor:
    """The image encoder. batch: (B, 3, 1024, 1024) preprocessed -> (B, 256, 64, 64)."""
    enc = model.image_encoder
    x = enc.patch_embed(batch)
    if enc.pos_embed is not None:
        x = x + enc.pos_embed
    for blk in enc.blocks:
        x = _encoder_block(blk, x, sdpa)
    return enc.neck(x.permute(0, 3, 1, 2))


# ---------------------------------------------------------------------------------------------
# Mask decoder with a shared image side
# ---------------------------------------------------------------------------------------------

class _ImageSide(NamedTuple):
    """Prompt-independent decoder inputs for one image (HW = 64*64 grid cells, C = 256)."""

    keys: Tensor     # (1, HW, C) image embedding + no-mask dense embedding
    pe: Tensor       # (1, HW, C) dense positional encoding
    k0: Tensor       # (heads, HW, d) layer-0 token->image keys
    v0: Tensor       # (heads, HW, d) layer-0 token->image values
    q0: Tensor       # (heads, HW, d) layer-0 image->token queries


def _heads(x: Tensor, heads: int) -> Tensor:
    """(N, L, heads*d) -> (heads, N*L, d)."""
    n, length, c = x.shape
    return x.reshape(n * length, heads, c // heads).transpose(0, 1)


def _out_folded_values(attn: nn.Module, v_tok: Tensor) -> Tensor:
    """Values already through the output projection, per head, output bias spread over the heads.

    v_tok: (N, T, C) -> (N, heads*T, C), row (h, t) = v_proj(v_tok)[t, head h] @ W_out[:, head h]^T
    + b_out / heads. Attention weights sum to 1 per head, so weights @ rows = out_proj(attention).
    """
    n, t, _ = v_tok.shape
    heads = attn.num_heads
    v = attn.v_proj(v_tok).view(n, t, heads, -1)
    w_out = attn.out_proj.weight.view(attn.out_proj.weight.shape[0], heads, -1)
    rows = torch.einsum("nthd,chd->nhtc", v, w_out) + attn.out_proj.bias / heads
    return rows.reshape(n, heads * t, -1)


def _t2i_shared(attn: nn.Module, q_tok: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Token->image attention against keys/values shared by all prompts.

    q_tok: (N, T, C); k, v: (heads, HW, d) -> (N, T, C).
    """
    n, t, _ = q_tok.shape
    q = _heads(attn.q_proj(q_tok), attn.num_heads)
    scores = (q @ k.transpose(1, 2)) / math.sqrt(k.shape[-1])
    out = scores.softmax(dim=-1) @ v                              # (heads, N*T, d)
    return attn.out_proj(out.transpose(0, 1).reshape(n, t, -1))


def _i2t_shared(attn: nn.Module, q_img: Tensor, k_tok: Tensor, v_tok: Tensor, residual: Tensor) -> Tensor:
    """residual + image->token attention, image queries shared by all prompts.

    q_img: (heads, HW, d); k_tok, v_tok: (N, T, C); residual: (1, HW, C) -> (N, HW, C).
    """
    n, t, _ = k_tok.shape
    heads, hw, d = q_img.shape
    k = _heads(attn.k_proj(k_tok), heads) / math.sqrt(d)                    # (heads, N*T, d)
    scores = (k @ q_img.transpose(1, 2)).view(heads, n, t, hw).softmax(dim=2)
    weights = scores.transpose(0, 1).reshape(n, heads * t, hw)
    return torch.baddbmm(residual, weights.transpose(1, 2), _out_folded_values(attn, v_tok))


def _t2i_folded(attn: nn.Module, q_tok: Tensor, keys_pe: Tensor, keys: Tensor) -> Tensor:
    """Token->image attention with per-prompt image keys, key/value projections folded into the tokens.

    q_tok: (N, T, C); keys_pe, keys: (N, HW, C) -> (N, T, C).
    """
    n, t, c = q_tok.shape
    heads = attn.num_heads
    q = attn.q_proj(q_tok).view(n, t, heads, -1) / math.sqrt(attn.internal_dim // heads)
    w_k = attn.k_proj.weight.view(heads, -1, c)
    q_eff = torch.einsum("nthd,hdc->nhtc", q, w_k).reshape(n, heads * t, c)
    q_bias = torch.einsum("nthd,hd->nht", q, attn.k_proj.bias.view(heads, -1)).reshape(n, heads * t, 1)
    scores = torch.baddbmm(q_bias, q_eff, keys_pe.transpose(1, 2)).softmax(dim=-1)   # (N, heads*T, HW)
    pooled = (scores @ keys).view(n, heads, t, c)
    w_v = attn.v_proj.weight.view(heads, -1, c)
    out = torch.einsum("nhtc,hdc->nthd", pooled, w_v) + attn.v_proj.bias.view(heads, -1)
    return attn.out_proj(out.reshape(n, t, -1))


def _i2t_folded(attn: nn.Module, keys_pe: Tensor, k_tok: Tensor, v_tok: Tensor, residual: Tensor) -> Tensor:
    """residual + image->token attention with per-prompt image queries (query projection folded).

    keys_pe, residual: (N, HW, C); k_tok, v_tok: (N, T, C) -> (N, HW, C).
    """
    n, t, c = k_tok.shape
    heads = attn.num_heads
    k = attn.k_proj(k_tok).view(n, t, heads, -1) / math.sqrt(attn.internal_dim // heads)
    w_q = attn.q_proj.weight.view(heads, -1, c)
    k_eff = torch.einsum("hdc,nthd->nhtc", w_q, k).reshape(n, heads * t, c)
    k_bias = torch.einsum("hd,nthd->nht", attn.q_proj.bias.view(heads, -1), k).reshape(n, heads * t, 1)
    scores = torch.baddbmm(k_bias, k_eff, keys_pe.transpose(1, 2))             # (N, heads*T, HW)
    scores = scores.view(n, heads, t, -1).softmax(dim=2).view(n, heads * t, -1)
    return torch.baddbmm(residual, scores.transpose(1, 2), _out_folded_values(attn, v_tok))


class SharedImageDecoder:
    """segment-anything's MaskDecoder for many point prompts on one image, image side shared.

    Uses the modules of ``model`` (no weight copies). Output matches
    ``model.mask_decoder(..., multimask_output=True)`` up to float rounding.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.dec = model.mask_decoder
        self.tf = self.dec.transformer

    def image_side(self, embedding: Tensor) -> _ImageSide:
        """embedding: (1, C, 64, 64) from the image encoder."""
        pe_grid = self.model.prompt_encoder.get_dense_pe()
        dense = self.model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        keys = (embedding + dense).flatten(2).permute(0, 2, 1)
        pe = pe_grid.flatten(2).permute(0, 2, 1).to(keys.dtype)
        first = self.tf.layers[0]
        heads = first.cross_attn_token_to_image.num_heads
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        return _ImageSide(keys=keys, pe=pe,
                          k0=_heads(t2i.k_proj(keys + pe), heads), v0=_heads(t2i.v_proj(keys), heads),
                          q0=_heads(i2t.q_proj(keys + pe), i2t.num_heads))

    def tokens(self, sparse: Tensor) -> Tensor:
        """Output tokens + prompt embeddings. sparse: (N, P, C) -> (N, 1 + masks + P, C)."""
        out = torch.cat([self.dec.iou_token.weight, self.dec.mask_tokens.weight], dim=0)
        return torch.cat([out.unsqueeze(0).expand(sparse.shape[0], -1, -1).to(sparse.dtype), sparse], dim=1)

    def transformer(self, side: _ImageSide, point_emb: Tensor) -> tuple[Tensor, Tensor]:
        """TwoWayTransformer. point_emb: (N, T, C) -> (queries (N, T, C), keys (N, HW, C))."""
        queries, keys = point_emb, side.keys
        for i, blk in enumerate(self.tf.layers):
            queries, keys = self._block(blk, i, side, queries, keys, point_emb)
        keys_pe = keys + side.pe
        q = queries + point_emb
        queries = self.tf.norm_final_attn(queries + _t2i_folded(self.tf.final_attn_token_to_image, q, keys_pe, keys))
        return queries, keys

    def _block(self, blk: nn.Module, i: int, side: _ImageSide, queries: Tensor, keys: Tensor,
               query_pe: Tensor) -> tuple[Tensor, Tensor]:
        """TwoWayAttentionBlock; block 0 sees the shared image side."""
        if blk.skip_first_layer_pe:
            queries = blk.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + blk.self_attn(q=q, k=q, v=queries)
        queries = blk.norm1(queries)
        q = queries + query_pe
        if i == 0:
            queries = blk.norm2(queries + _t2i_shared(blk.cross_attn_token_to_image, q, side.k0, side.v0))
        else:
            keys_pe = keys + side.pe
            queries = blk.norm2(queries + _t2i_folded(blk.cross_attn_token_to_image, q, keys_pe, keys))
        queries = blk.norm3(queries + blk.mlp(queries))
        q = queries + query_pe
        if i == 0:
            keys = _i2t_shared(blk.cross_attn_image_to_token, side.q0, q, queries, keys)
        else:
            keys = _i2t_folded(blk.cross_attn_image_to_token, keys_pe, q, queries, keys)
        return queries, blk.norm4(keys)

    def iou(self, queries: Tensor) -> Tensor:
        """Predicted IoU of the 3 multimask outputs. queries: (N, T, C) -> (N, 3)."""
        return self.dec.iou_prediction_head(queries[:, 0, :])[:, 1:]

    def masks(self, queries: Tensor, keys: Tensor, chunk: int) -> Tensor:
        """Low-res logits of the 3 multimask outputs. queries (N, T, C), keys (N, HW, C) -> (N, 3, 256, 256)."""
        return torch.cat([self._masks(queries[s:s + chunk], keys[s:s + chunk])
                          for s in range(0, len(queries), chunk)])

    def _masks(self, queries: Tensor, keys: Tensor) -> Tensor:
        """output_upscaling + hypernetwork product, run channels-last (keys already are)."""
        n, hw, c = keys.shape
        side = math.isqrt(hw)
        conv1, norm, act1, conv2, act2 = self.dec.output_upscaling
        x = conv1(keys.view(n, side, side, c).permute(0, 3, 1, 2))                  # channels-last
        x = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), norm.weight, norm.bias, norm.eps)
        x = act2(conv2(act1(x).permute(0, 3, 1, 2)))                               # (N, 32, 256, 256) CL
        hyper = torch.stack([self.dec.output_hypernetworks_mlps[i](queries[:, 1 + i, :])
                             for i in range(1, self.dec.num_mask_tokens)], dim=1)  # (N, 3, 32)
        _, c2, h, w = x.shape
        masks = x.permute(0, 2, 3, 1).reshape(n, h * w, c2) @ hyper.transpose(1, 2)
        return masks.transpose(1, 2).reshape(n, -1, h, w)


# ---------------------------------------------------------------------------------------------
# Mask post-processing
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    """One image-encoder input: an image or one of its crops."""

    image_index: int
    crop_box: XYXY
    layer: int


@dataclass
class _Masks:
    """Masks of one crop, or of one image after merging its crops (N rows)."""

    masks: Tensor        # (N, h, w) bool in crop frame
    iou: Tensor          # (N,) float32
    stability: Tensor    # (N,) float32
    points: np.ndarray   # (N, 2) float64 XY in the original image
    boxes: Tensor        # (N, 4) int64 XYXY in the original image
    crop_boxes: Tensor   # (N, 4) int64 XYXY

    def select(self, keep: Tensor) -> _Masks:
        idx = keep.to(self.iou.device)
        return _Masks(self.masks[idx], self.iou[idx], self.stability[idx],
                      self.points[keep.cpu().numpy()], self.boxes[idx], self.crop_boxes[idx])


_FIELDS = ("masks", "iou", "stability", "points", "boxes", "crop_boxes")


def _empty_masks(size: tuple[int, int], device: torch.device) -> _Masks:
    """No masks; size: (h, w) of the frame."""
    return _Masks(torch.zeros((0, *size), dtype=torch.bool, device=device),
                  torch.zeros(0, device=device), torch.zeros(0, device=device), np.zeros((0, 2)),
                  torch.zeros((0, 4), dtype=torch.int64, device=device),
                  torch.zeros((0, 4), dtype=torch.int64, device=device))


def _concat(parts: Sequence[_Masks]) -> _Masks:
    """Row-wise concatenation of masks in the same frame (at least one part)."""
    return _Masks(*(np.concatenate([p.points for p in parts]) if f == "points"
                    else torch.cat([getattr(p, f) for p in parts]) for f in _FIELDS))


def _to_image_frame(crops: Sequence[tuple[XYXY, _Masks]], size: tuple[int, int], device: torch.device) -> _Masks:
    """Per-crop results of one image -> one _Masks with (N, H, W) masks. size: (H, W)."""
    if not crops:
        return _empty_masks(size, device)
    parts = []
    for box, part in crops:
        part.masks = _uncrop(part.masks, box, size)
        parts.append(part)
    return _concat(parts)


def _uncrop(masks: Tensor, crop_box: XYXY, size: tuple[int, int]) -> Tensor:
    """(N, h, w) crop-frame masks -> (N, H, W) image-frame masks (zero padded, as uncrop_masks)."""
    h, w = size
    x0, y0, x1, y1 = crop_box
    if (x0, y0, x1, y1) == (0, 0, w, h):
        return masks
    return F.pad(masks, (x0, w - x1, y0, h - y1), value=False)


class SamBatchedGenerator:
    """Automatic mask generation equivalent to segment-anything's, batched (see module docstring).

    ``autocast`` (bf16) and ``sdpa`` (fused encoder attention) default to on for CUDA and off
    elsewhere; ``model`` lets tests and benchmarks pass an already built SAM.
    """

    name = "sam-batched"

    def __init__(self, cfg: SamConfig, device: str = "cpu", *, model: Any = None,
                 autocast: Optional[bool] = None, sdpa: Optional[bool] = None) -> None:
        from segment_anything.utils.amg import build_all_layer_point_grids
        from segment_anything.utils.transforms import ResizeLongestSide

        self.cfg = cfg
        if model is None:
            self.model, self.checkpoint_sha256 = build_sam_model(cfg, device)
        else:
            self.model, self.checkpoint_sha256 = model.to(device).eval(), cfg.checkpoint_sha256
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        self.autocast = cuda if autocast is None else autocast
        self.sdpa = cuda if sdpa is None else sdpa
        self.img_size = int(self.model.image_encoder.img_size)
        self.transform = ResizeLongestSide(self.img_size)
        self.point_grids = build_all_layer_point_grids(cfg.points_per_side, cfg.crop_n_layers,
                                                       cfg.crop_n_points_downscale_factor)
        self.decoder = SharedImageDecoder(self.model)
        self._chunks = _CUDA_CHUNKS if cuda else _CPU_CHUNKS

    # -- protocol ------------------------------------------------------------------------------

    def generate(self, images: Sequence[np.ndarray], image_ids: Sequence[str] = ()) -> list[MaskBatch]:
        """images: (H, W, 3) uint8 RGB, sizes may differ -> one MaskBatch per image."""
        jobs = self._jobs(images)
        per_image: list[list[tuple[XYXY, _Masks]]] = [[] for _ in images]
        with torch.inference_mode():
            for group in self._groups(jobs):
                for job, embedding in zip(group, self._encode(images, group)):
                    masks = self._process_crop(images[job.image_index], job, embedding)
                    per_image[job.image_index].append((job.crop_box, masks))
            out = [self._finish(image, crops) for image, crops in zip(images, per_image)]
        log.debug("%d images, %d encoder inputs -> %s masks", len(images), len(jobs), [len(b) for b in out])
        return out

    def describe(self) -> dict[str, object]:
        return {"generator": self.name, "model_type": self.cfg.model_type,
                "checkpoint_sha256": self.checkpoint_sha256, **amg_kwargs(self.cfg),
                "image_batch_size": self.cfg.encoder_batch_size,
                "precision": "bf16-autocast" if self.autocast else "fp32",
                "attention": "sdpa" if self.sdpa else "exact"}

    # -- image encoder -------------------------------------------------------------------------

    def _jobs(self, images: Sequence[np.ndarray]) -> list[_Job]:
        from segment_anything.utils.amg import generate_crop_boxes

        jobs = []
        for i, image in enumerate(images):
            boxes, layers = generate_crop_boxes(image.shape[:2], self.cfg.crop_n_layers, self.cfg.crop_overlap_ratio)
            jobs += [_Job(i, tuple(int(v) for v in box), layer) for box, layer in zip(boxes, layers)]  # type: ignore[misc]
        return jobs

    def _groups(self, jobs: Sequence[_Job]) -> Iterator[list[_Job]]:
        step = self.cfg.encoder_batch_size
        for s in range(0, len(jobs), step):
            yield list(jobs[s:s + step])

    def _amp(self) -> ContextManager[Any]:
        if self.autocast:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _encode(self, images: Sequence[np.ndarray], group: Sequence[_Job]) -> Tensor:
        """Crops of ``group`` -> embeddings (B, 256, 64, 64)."""
        batch = torch.cat([self._preprocess(self._crop(images[j.image_index], j.crop_box)) for j in group])
        with self._amp():
            return encode_images(self.model, batch, self.sdpa)

    @staticmethod
    def _crop(image: np.ndarray, box: XYXY) -> np.ndarray:
        x0, y0, x1, y1 = box
        return image[y0:y1, x0:x1, :]

    def _preprocess(self, image: np.ndarray) -> Tensor:
        """(h, w, 3) uint8 -> (1, 3, 1024, 1024) normalised and padded, as SamPredictor.set_image."""
        resized = torch.as_tensor(self.transform.apply_image(image), device=self.device)
        return self.model.preprocess(resized.permute(2, 0, 1).contiguous()[None])

    # -- one crop ------------------------------------------------------------------------------

    def _process_crop(self, image: np.ndarray, job: _Job, embedding: Tensor) -> _Masks:
        """Masks of one crop after in-crop NMS, in the original image frame (boxes, points)."""
        from segment_anything.utils.amg import uncrop_boxes_xyxy
        from torchvision.ops.boxes import batched_nms

        x0, y0, x1, y1 = job.crop_box
        crop_size = (y1 - y0, x1 - x0)
        points = self.point_grids[job.layer] * np.array(crop_size)[None, ::-1]
        with self._amp():
            side = self.decoder.image_side(embedding[None])
        parts = [self._process_points(side, points[s:s + self.cfg.points_per_batch], crop_size, job.crop_box,
                                      image.shape[:2])
                 for s in range(0, len(points), self.cfg.points_per_batch)]
        data = _concat(parts)
        keep = batched_nms(data.boxes.float(), data.iou, torch.zeros(len(data.boxes), device=data.iou.device),
                           iou_threshold=self.cfg.box_nms_thresh)
        data = data.select(keep)
        data.boxes = uncrop_boxes_xyxy(data.boxes, list(job.crop_box))
        data.points = data.points + np.array([[x0, y0]])
        data.crop_boxes = torch.tensor([job.crop_box], dtype=torch.int64, device=self.device).repeat(len(data.iou), 1)
        return data

    def _process_points(self, side: _ImageSide, points: np.ndarray, crop_size: tuple[int, int],
                        crop_box: XYXY, orig_size: tuple[int, int]) -> _Masks:
        """One point batch: decode, filter by predicted IoU, upscale the survivors, filter, box.

        points: (P, 2) float64 XY in the crop frame.
        """
        step = self._chunks.transformer_points
        decoded = [self._decode(side, points[s:s + step], crop_size) for s in range(0, len(points), step)]
        logits = torch.cat([d[0] for d in decoded])
        iou, pts = torch.cat([d[1] for d in decoded]), np.concatenate([d[2] for d in decoded])
        if len(logits) == 0:
            return _empty_masks(crop_size, self.device)
        input_size = self.transform.get_preprocess_shape(crop_size[0], crop_size[1], self.img_size)
        step = max(1, self._chunks.post_elements // (crop_size[0] * crop_size[1] + self.img_size ** 2))
        return _concat([self._postprocess(logits[s:s + step], iou[s:s + step], pts[s:s + step], input_size,
                                          crop_size, crop_box, orig_size)
                        for s in range(0, len(logits), step)])

    def _decode(self, side: _ImageSide, points: np.ndarray, crop_size: tuple[int, int]
                ) -> tuple[Tensor, Tensor, np.ndarray]:
        """Point prompts (P, 2) -> (low-res logits (K, 256, 256), IoU (K,), points (K, 2)) of the
        outputs passing the predicted-IoU filter, point-major as segment-anything flattens them."""
        coords = torch.as_tensor(self.transform.apply_coords(points, crop_size), device=self.device)
        labels = torch.ones(len(coords), dtype=torch.int, device=self.device)
        with self._amp():
            sparse, _ = self.model.prompt_encoder(points=(coords[:, None, :], labels[:, None]), boxes=None, masks=None)
            queries, keys = self.decoder.transformer(side, self.decoder.tokens(sparse))
            iou = self.decoder.iou(queries).float()                                  # (P, 3)
            keep = (iou > self.cfg.pred_iou_thresh if self.cfg.pred_iou_thresh > 0.0
                    else torch.ones_like(iou, dtype=torch.bool))
            alive = keep.any(dim=1).nonzero()[:, 0]
            if len(alive) == 0:
                low_res = 4 * math.isqrt(keys.shape[1])
                return queries.new_zeros((0, low_res, low_res)), iou.new_zeros(0), np.zeros((0, 2))
            logits = self.decoder.masks(queries[alive], keys[alive], self._chunks.upscale_points)
        flat_keep = keep[alive].reshape(-1)
        alive_np = alive.cpu().numpy()
        pts = np.repeat(points[alive_np], iou.shape[1], axis=0)[flat_keep.cpu().numpy()]
        return logits.flatten(0, 1)[flat_keep], iou[alive].reshape(-1)[flat_keep], pts

    def _postprocess(self, logits: Tensor, iou: Tensor, points: np.ndarray, input_size: tuple[int, int],
                     crop_size: tuple[int, int], crop_box: XYXY, orig_size: tuple[int, int]) -> _Masks:
        """Upscale low-res logits (K, 256, 256) to the crop, stability filter, threshold, box, edge filter."""
        from segment_anything.utils.amg import batched_mask_to_box, calculate_stability_score, is_box_near_crop_edge

        thr = self.model.mask_threshold
        full = upscale_logits(logits, input_size, crop_size, self.img_size)
        stability = calculate_stability_score(full, thr, self.cfg.stability_score_offset)
        keep = stability >= self.cfg.stability_score_thresh if self.cfg.stability_score_thresh > 0.0 else None
        if keep is not None:
            full, iou, stability, points = full[keep], iou[keep], stability[keep], points[keep.cpu().numpy()]
        masks = full > thr
        boxes = batched_mask_to_box(masks)
        edge = ~is_box_near_crop_edge(boxes, list(crop_box), [0, 0, orig_size[1], orig_size[0]])
        crop_boxes = torch.zeros((len(iou), 4), dtype=torch.int64, device=self.device)
        data = _Masks(masks, iou, stability, points, boxes, crop_boxes)
        return data if bool(edge.all()) else data.select(edge)

    # -- one image -----------------------------------------------------------------------------

    def _finish(self, image: np.ndarray, crops: Sequence[tuple[XYXY, _Masks]]) -> MaskBatch:
        """Merge crops (crop NMS), clean small regions, encode RLEs -> MaskBatch."""
        from torchvision.ops.boxes import batched_nms, box_area

        size = (int(image.shape[0]), int(image.shape[1]))
        data = _to_image_frame(crops, size, self.device)
        if len(crops) > 1:
            scores = (1 / box_area(data.crop_boxes)).to(data.boxes.device)
            keep = batched_nms(data.boxes.float(), scores, torch.zeros(len(data.boxes), device=scores.device),
                               iou_threshold=self.cfg.crop_nms_thresh)
            data = data.select(keep)
        if self.cfg.min_mask_region_area > 0 and len(data.iou):
            data = self._clean_small_regions(data)
        return MaskBatch.from_rles(
            size, encode_rles(data.masks), predicted_iou=data.iou.float().cpu().numpy(),
            stability_score=data.stability.float().cpu().numpy(), points=data.points.astype(np.float32),
            crop_boxes=data.crop_boxes.cpu().numpy(), source=f"sam:{self.cfg.model_type}")

    def _clean_small_regions(self, data: _Masks) -> _Masks:
        """SamAutomaticMaskGenerator.postprocess_small_regions: fill holes, drop islands, re-NMS."""
        from segment_anything.utils.amg import batched_mask_to_box
        from torchvision.ops.boxes import batched_nms

        area = self.cfg.min_mask_region_area
        cleaned, scores = [], []
        for mask in data.masks.cpu().numpy():
            mask, changed_holes = remove_small_regions(mask, area, mode="holes")
            mask, changed_islands = remove_small_regions(mask, area, mode="islands")
            cleaned.append(torch.as_tensor(mask))
            scores.append(float(not (changed_holes or changed_islands)))
        masks = torch.stack(cleaned)
        boxes = batched_mask_to_box(masks)
        keep = batched_nms(boxes.float(), torch.as_tensor(scores), torch.zeros(len(boxes)),
                           iou_threshold=max(self.cfg.box_nms_thresh, self.cfg.crop_nms_thresh))
        changed = torch.as_tensor(scores) == 0.0
        data.masks = masks.to(self.device)
        data.boxes = torch.where(changed[:, None], boxes, data.boxes.cpu()).to(self.device)
        return data.select(keep.to(self.device))
