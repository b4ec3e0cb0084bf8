"""Linear layers through oneDNN with their weights packed once: a transformer's matmuls on a CPU, fp32 or bf16.

On a CPU ``nn.Linear`` runs MKL's addmm, about 130-190 GFLOP/s on two of these EPYC cores in fp32; oneDNN on a
weight reordered once into its own blocked layout reaches 210-220 (a ViT-B/16 crop: 0.197 -> 0.178 s), and 450 in
bf16. With bf16 only the matmuls are bf16 (weights stored in bf16, inputs rounded to bf16, products summed in fp32,
returned in the caller's dtype) while layer norms, softmax and the residual stream stay fp32: as fast as casting
the whole model to bf16 (0.102 against 0.097 s a crop) with a tenth of its error (ViT-B/16 embeddings, 1 - cos
4e-6 against 5e-5), so labels stay those of fp32 where a bf16 model's flip.

:func:`pack_linears` swaps a module's ``nn.Linear`` and self-attention ``nn.MultiheadAttention`` layers for
:class:`PackedLinear` and :class:`PackedAttention` in place. :func:`packing_available` says whether this torch
build runs them (its oneDNN ops are private and not on every platform): callers keep the plain model otherwise.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ovlabel.engine.errors import ConfigError

log = logging.getLogger(__name__)
ROWS_HINT = 1024  # rows oneDNN packs a weight for; any row count works (within 5% of the best layout here)


@functools.lru_cache(maxsize=None)
def packing_available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether this torch build runs oneDNN-packed linear layers in ``dtype`` (tried once on a 2x2 layer)."""
    try:
        probe = PackedLinear(torch.eye(2), torch.zeros(2), dtype)
        return bool(torch.allclose(probe(torch.ones(1, 2)), torch.ones(1, 2)))
    except (AttributeError, RuntimeError, NotImplementedError) as exc:
        log.info("oneDNN-packed linear layers unavailable in %s (%s); plain torch kernels are used", dtype, exc)
        return False


class PackedLinear(nn.Module):
    """``x W^T + b`` of a linear layer, W reordered for oneDNN once, the matmul in ``dtype`` (fp32 or bf16).

    weight: (out, in), bias: (out,) or None. x: (..., in) in any float dtype -> (..., out) in x's dtype. The
    packed weight is an opaque oneDNN tensor, held as an attribute (not a parameter: ``parameters()`` and
    ``state_dict()`` no longer hold it, and the layer cannot be copied or moved off the CPU).
    """

    def __init__(self, weight: Tensor, bias: Optional[Tensor], dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.out_features, self.in_features = int(weight.shape[0]), int(weight.shape[1])
        self.dtype = dtype
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(weight.detach().to(dtype).contiguous(),
                                                                     ROWS_HINT)
        self.packed_bias = None if bias is None else bias.detach().to(dtype).contiguous()

    @classmethod
    def of(cls, linear: nn.Linear, dtype: torch.dtype = torch.float32) -> "PackedLinear":
        return cls(linear.weight, linear.bias, dtype)

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, self.in_features).to(self.dtype).contiguous()
        y = torch.ops.mkldnn._linear_pointwise(rows, self.packed_weight, self.packed_bias, "none", [], "")
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype={self.dtype}"


class PackedAttention(nn.Module):
    """The self-attention of an ``nn.MultiheadAttention`` (one in-projection, as open_clip builds them): packed
    in- and out-projections around ``scaled_dot_product_attention``, in the residual stream's dtype.

    Called as open_clip's blocks call it: ``attn(x, x, x, need_weights=False, attn_mask=mask)`` -> (out, None);
    x: (B, N, C) if ``batch_first`` else (N, B, C); mask: (N, N) or (B * heads, N, N), additive float or boolean
    (True: not attended), as ``nn.MultiheadAttention`` takes it.
    """

    def __init__(self, mha: nn.MultiheadAttention, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not _packable(mha):
            raise ConfigError("PackedAttention takes an nn.MultiheadAttention with one in-projection and no added "
                              "key/value biases; leave this layer unpacked")
        self.num_heads, self.embed_dim, self.batch_first = mha.num_heads, mha.embed_dim, mha.batch_first
        self.in_proj = PackedLinear(mha.in_proj_weight, mha.in_proj_bias, dtype)
        self.out_proj = PackedLinear.of(mha.out_proj, dtype)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor] = None,
                need_weights: bool = True, attn_mask: Optional[Tensor] = None, **_: Any) -> tuple[Tensor, None]:
        if key is not query or value is not query or key_padding_mask is not None or need_weights:
            raise ConfigError("PackedAttention does self-attention without key padding or attention weights "
                              "(attn(x, x, x, need_weights=False)); use nn.MultiheadAttention for anything else")
        x = query if self.batch_first else query.transpose(0, 1)
        b, n, c = x.shape
        q, k, v = self.in_proj(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=_sdpa_mask(attn_mask, b, self.num_heads, q.dtype))
        out = self.out_proj(out.transpose(1, 2).reshape(b, n, c))
        return (out if self.batch_first else out.transpose(0, 1)), None

    def values(self, x: Tensor) -> Tensor:
        """The value projection alone. x: (..., C) -> (..., C)."""
        return self.in_proj(x)[..., 2 * self.embed_dim:]


def _sdpa_mask(mask: Optional[Tensor], batch: int, heads: int, dtype: torch.dtype) -> Optional[Tensor]:
    """nn.MultiheadAttention's mask as scaled_dot_product_attention takes it (a boolean one there means attended)."""
    if mask is None:
        return None
    if mask.dim() == 3:
        mask = mask.view(batch, heads, *mask.shape[1:])
    return ~mask if mask.dtype == torch.bool else mask.to(dtype)


def value_projection(attn: Any, x: Tensor) -> Tensor:
    """The value projection of an attention layer (``nn.MultiheadAttention`` or :class:`PackedAttention`).
    x: (..., C) -> (..., C)."""
    if isinstance(attn, PackedAttention):
        return attn.values(x)
    width = x.shape[-1]
    weight = attn.in_proj_weight[2 * width:] if attn.in_proj_weight is not None else attn.v_proj_weight
    bias = attn.in_proj_bias[2 * width:] if attn.in_proj_bias is not None else None
    return F.linear(x, weight, bias)


def _packable(child: nn.Module) -> bool:
    """Whether ``child`` is an attention layer :class:`PackedAttention` can stand in for."""
    return (isinstance(child, nn.MultiheadAttention) and child.in_proj_weight is not None and child.bias_k is None
            and not child.add_zero_attn)


def pack_linears(module: nn.Module, dtype: torch.dtype = torch.float32) -> int:
    """Swap ``module``'s linear layers (and self-attention layers, :class:`PackedAttention`) for packed ones, in
    place; returns how many were swapped. Other layers and the parameters they hold stay as they are."""
    swapped = 0
    for name, child in list(module.named_children()):
        if _packable(child):
            setattr(module, name, PackedAttention(child, dtype))
            swapped += 1
        elif isinstance(child, nn.Linear):
            setattr(module, name, PackedLinear.of(child, dtype))
            swapped += 1
        else:
            swapped += pack_linears(child, dtype)
    return swapped


def packed_dtype(module: nn.Module) -> Optional[torch.dtype]:
    """The dtype of ``module``'s packed matmuls (the first packed layer's), None if it has none."""
    for sub in module.modules():
        if isinstance(sub, PackedLinear):
            return sub.dtype
    return None
