"""segment-anything's mask decoder for many point prompts on one image, the image side shared.

The prompt-independent image side (layer-0 keys, values and queries) is computed once per image,
not once per prompt, and the per-head projections are folded into the few prompt tokens, so the
per-prompt work on the 64x64 grid is about a third of segment-anything's; the same arithmetic
reordered, so fp32 results agree to float rounding.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ImageSide(NamedTuple):
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

    def image_side(self, embedding: Tensor) -> ImageSide:
        """embedding: (1, C, 64, 64) from the image encoder."""
        pe_grid = self.model.prompt_encoder.get_dense_pe()
        dense = self.model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        keys = (embedding + dense).flatten(2).permute(0, 2, 1)
        pe = pe_grid.flatten(2).permute(0, 2, 1).to(keys.dtype)
        first = self.tf.layers[0]
        heads = first.cross_attn_token_to_image.num_heads
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        return ImageSide(keys=keys, pe=pe,
                          k0=_heads(t2i.k_proj(keys + pe), heads), v0=_heads(t2i.v_proj(keys), heads),
                          q0=_heads(i2t.q_proj(keys + pe), i2t.num_heads))

    def tokens(self, sparse: Tensor) -> Tensor:
        """Output tokens + prompt embeddings. sparse: (N, P, C) -> (N, 1 + masks + P, C)."""
        out = torch.cat([self.dec.iou_token.weight, self.dec.mask_tokens.weight], dim=0)
        return torch.cat([out.unsqueeze(0).expand(sparse.shape[0], -1, -1).to(sparse.dtype), sparse], dim=1)

    def transformer(self, side: ImageSide, point_emb: Tensor) -> tuple[Tensor, Tensor]:
        """TwoWayTransformer. point_emb: (N, T, C) -> (queries (N, T, C), keys (N, HW, C))."""
        queries, keys = point_emb, side.keys
        for i, blk in enumerate(self.tf.layers):
            queries, keys = self._block(blk, i, side, queries, keys, point_emb)
        keys_pe = keys + side.pe
        q = queries + point_emb
        queries = self.tf.norm_final_attn(queries + _t2i_folded(self.tf.final_attn_token_to_image, q, keys_pe, keys))
        return queries, keys

    def _block(self, blk: nn.Module, i: int, side: ImageSide, queries: Tensor, keys: Tensor,
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

    def decode(self, side: ImageSide, coords: Tensor, pred_iou_thresh: float, chunk: int
               ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Point prompts -> predicted IoU, its filter, and the low-res logits of the prompts that pass.

        coords: (P, 2) XY in the model's input frame -> (logits (A, 3, 256, 256) of the A prompts
        ``alive`` with an output passing the filter, iou (P, 3) float32, keep (P, 3) bool, alive (A,)).
        ``chunk``: prompts through the upscaling convs at once.
        """
        labels = torch.ones(len(coords), dtype=torch.int, device=coords.device)
        sparse, _ = self.model.prompt_encoder(points=(coords[:, None, :], labels[:, None]), boxes=None, masks=None)
        queries, keys = self.transformer(side, self.tokens(sparse))
        iou = self.iou(queries).float()                                          # (P, 3)
        keep = iou > pred_iou_thresh if pred_iou_thresh > 0.0 else torch.ones_like(iou, dtype=torch.bool)
        alive = keep.any(dim=1).nonzero()[:, 0]
        if len(alive) == 0:
            low_res = 4 * math.isqrt(keys.shape[1])
            return queries.new_zeros((0, iou.shape[1], low_res, low_res)), iou, keep, alive
        return self.masks(queries[alive], keys[alive], chunk), iou, keep, alive

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
