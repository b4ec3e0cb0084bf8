# Vendored for tests only: OVSeg's mask-prompted image tower, from facebookresearch/ov-seg,
# open_clip_training/src/open_clip/model.py at commit 36f49d496714998058d115ffb6172d9d84c59065
# (https://github.com/facebookresearch/ov-seg): the classes LayerNorm, QuickGELU, ResidualAttentionBlock,
# Transformer and VisualTransformer (with to_2tuple from open_clip/utils.py), verbatim except that the
# lock / grad-checkpointing helpers are removed and the code is formatted to fit this file.
# Licence: ov-seg's open_clip_training/ folder is OpenCLIP's code under the MIT licence of its LICENSE file:
#   Copyright (c) 2012-2021 Gabriel Ilharco, Mitchell Wortsman, Nicholas Carlini, Rohan Taori, Achal Dave,
#   Vaishaal Shankar, John Miller, Hongseok Namkoong, Hannaneh Hajishirzi, Ali Farhadi, Ludwig Schmidt.
#   Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
#   documentation files (the "Software"), to deal in the Software without restriction, including without
#   limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the
#   Software, and to permit persons to whom the Software is furnished to do so, subject to the following
#   conditions: The above copyright notice and this permission notice shall be included in all copies or
#   substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
# (The rest of ov-seg, open_vocab_seg/ included, is CC BY-NC 4.0; none of it is vendored here.)
# ruff: noqa
import collections.abc
import math
from collections import OrderedDict
from functools import reduce
from itertools import repeat
from operator import mul
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn


def _ntuple(n):
    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return x
        return tuple(repeat(x, n))
    return parse


to_2tuple = _ntuple(2)


class LayerNorm(nn.LayerNorm):
    """Subclass torch's LayerNorm to handle fp16."""

    def forward(self, x: torch.Tensor):
        orig_type = x.dtype
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.to(orig_type)


class QuickGELU(nn.Module):
    # NOTE This is slower than nn.GELU or nn.SiLU and uses more GPU memory
    def forward(self, x: torch.Tensor):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int, mlp_ratio: float = 4.0, act_layer: Callable = nn.GELU):
        super().__init__()

        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        mlp_width = int(d_model * mlp_ratio)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d_model, mlp_width)),
            ("gelu", act_layer()),
            ("c_proj", nn.Linear(mlp_width, d_model))
        ]))
        self.ln_2 = LayerNorm(d_model)

    def attention(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None):
        return self.attn(x, x, x, need_weights=False, attn_mask=attn_mask)[0]

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None):
        x = x + self.attention(self.ln_1(x), attn_mask=attn_mask)
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float = 4.0, act_layer: Callable = nn.GELU):
        super().__init__()
        self.width = width
        self.layers = layers
        self.grad_checkpointing = False

        self.resblocks = nn.ModuleList([
            ResidualAttentionBlock(width, heads, mlp_ratio, act_layer=act_layer)
            for _ in range(layers)
        ])

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None):
        for r in self.resblocks:
            x = r(x, attn_mask=attn_mask)
        return x


class VisualTransformer(nn.Module):
    def __init__(
            self, image_size: int, patch_size: int, width: int, layers: int, heads: int, mlp_ratio: float,
            output_dim: int, act_layer: Callable = nn.GELU, mask_emb_depth: int = 0):
        super().__init__()
        self.image_size = to_2tuple(image_size)
        self.patch_size = to_2tuple(patch_size)
        self.width = width
        self.grid_size = (self.image_size[0] // self.patch_size[0], self.image_size[1] // self.patch_size[1])
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=width, kernel_size=patch_size, stride=patch_size, bias=False)

        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid_size[0] * self.grid_size[1] + 1, width))
        self.ln_pre = LayerNorm(width)

        self.transformer = Transformer(width, layers, heads, mlp_ratio, act_layer=act_layer)

        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

        if mask_emb_depth > 0:
            self.mask_pool = nn.AvgPool2d(patch_size, stride=patch_size)
            self.mask_emb_depth = mask_emb_depth
            self.mask_embedding = nn.Parameter(torch.zeros(self.mask_emb_depth, self.grid_size[0] * self.grid_size[1], self.width))
            self.init_mask_embedding(mode='mae')

    def init_mask_embedding(self, mode='mae'):
        if mode == 'mae':
            # https://github.com/facebookresearch/mae/blob/main/models_mae.py#L80
            torch.nn.init.normal_(self.mask_embedding, std=.02)
        elif mode == 'vpt_random':
            # https://github.com/KMnP/vpt/blob/main/src/models/vit_prompt/vit_mae.py#L34
            val = math.sqrt(6. / float(3 * reduce(mul, self.patch_size, 1) + self.width))  # noqa
            nn.init.uniform_(self.mask_embedding, -val, val)
        elif mode == 'zeros':
            pass

    def forward(self, x: torch.Tensor, m=None):
        x = self.conv1(x)  # shape = [*, width, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1)  # shape = [*, width, grid ** 2]
        x = x.permute(0, 2, 1)  # shape = [*, grid ** 2, width]
        if m is not None:
            m = self.mask_pool(m.to(torch.float)).reshape(m.shape[0], -1).unsqueeze(-1)
            m = torch.ceil(m)
            if self.mask_embedding.shape[1] == 1:
                mask_embedding = self.mask_embedding.to(x.dtype).repeat(1, x.shape[1], 1)
            else:
                mask_embedding = self.mask_embedding.to(x.dtype)
            x = x * m + mask_embedding[0].unsqueeze(0) * (1 - m)
        x = torch.cat(
            [self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device),
             x], dim=1)  # shape = [*, grid ** 2 + 1, width]
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)

        x = x.permute(1, 0, 2)  # NLD -> LND
        if m is not None:
            for i, blk in enumerate(self.transformer.resblocks):
                d = i + 1
                x = blk(x, attn_mask=None)
                if d < self.mask_emb_depth:
                    masked_x = x[1:, :, :] * m.permute(1, 0, 2) + \
                               mask_embedding[d].unsqueeze(0).permute(1, 0, 2) * (1 - m.permute(1, 0, 2))
                    x = torch.cat([x[:1, :, :], masked_x], dim=0)
        else:
            x = self.transformer(x)
        x = x.permute(1, 0, 2)  # LND -> NLD

        x = self.ln_post(x[:, 0, :])

        if self.proj is not None:
            x = x @ self.proj

        return x
