"""The SAM image encoder, batched: several images (or crops) per call, attention written out.

fp32 and chunked over heads on CPU (bounded memory, the same arithmetic as segment-anything),
``scaled_dot_product_attention`` with the relative-position bias (under bf16 autocast) on CUDA.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Bound on temporary memory (elements) for the CPU path.
_CPU_ATTN_ELEMENTS = 1 << 26     # encoder attention scores held at once (256 MB fp32)


def preprocess(model: Any, transform: Any, image: np.ndarray, device: torch.device) -> Tensor:
    """(h, w, 3) uint8 -> (1, 3, 1024, 1024) normalised and padded, as SamPredictor.set_image.

    transform: segment-anything's ResizeLongestSide for the model's input size.
    """
    resized = torch.as_tensor(transform.apply_image(image), device=device)
    return model.preprocess(resized.permute(2, 0, 1).contiguous()[None])


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

