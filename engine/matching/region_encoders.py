"""Region encoders that see the mask (``matching.crop_mode`` alpha or mask_prompt), over any open_clip ViT.

- ``alpha``, after Alpha-CLIP (Sun et al., CVPR 2024; SunzeY/AlphaCLIP, ``alpha_clip/model.py``): the mask
  is an alpha channel, normalised with mean 0.5 and std 0.26 as Alpha-CLIP's ``Normalize(0.5, 0.26)``, fed
  through an extra patch embedding ``visual.conv1_alpha`` (``Conv2d(1, width, patch, patch, bias=False)``,
  zero-initialised) whose output is added to the RGB patch embedding's; the rest is the ViT as it is. With
  zero alpha weights the tower is plain CLIP on the same (context) crop.
- ``mask_prompt``, after OVSeg's mask prompt tuning (Liang et al., CVPR 2023; facebookresearch/ov-seg,
  ``VisualTransformer`` of ``open_clip_training/src/open_clip/model.py``): a patch none of whose pixels lies in
  the mask is masked; its token is replaced by the learned prompt ``visual.mask_embedding[0]`` before the
  class token and positions are added, and after block ``d - 1`` by ``mask_embedding[d]`` for every
  ``d < mask_prompt_depth``. With a mask covering every patch the tower is plain CLIP.

Both parameters are attached to ``model.visual`` (:func:`attach_alpha`, :func:`attach_mask_prompt`), so a
model's state dict names them as Alpha-CLIP's and OVSeg's checkpoints do (``visual.conv1_alpha.weight``,
``visual.mask_embedding``). The forwards use the tower's own ``conv1``, class token, positional embedding,
``ln_pre``, blocks, pooling and projection (open_clip's ``VisionTransformer``), so any open_clip ViT
architecture works, the demo's tiny one included. Checkpoints and the embedder: :mod:`.region_models`.

Shapes: pixels (N, 3, S, S) normalised; masks (N, S, S) uint8, 255 inside; alpha (N, 1, S, S); keep
(N, Gh * Gw, 1), 1.0 for a patch touching the mask; tokens (N, 1 + Gh * Gw, C); output (N, D).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Protocol, runtime_checkable

import numpy as np

from ovlabel.engine.errors import ConfigError

if TYPE_CHECKING:
    import torch

ALPHA_MODE, MASK_PROMPT_MODE = "alpha", "mask_prompt"
MASK_INPUT_MODES = (ALPHA_MODE, MASK_PROMPT_MODE)  # the crop modes whose encoder takes the mask too
ALPHA_MEAN, ALPHA_STD = 0.5, 0.26  # Alpha-CLIP's alpha normalisation, of the mask in [0, 1]
MASK_PROMPT_INIT_STD = 0.02  # new mask prompts: OVSeg's 'mae' initialisation (normal, std 0.02)
ALPHA_KEY, MASK_PROMPT_KEY = "visual.conv1_alpha.weight", "visual.mask_embedding"  # their state dict keys


@runtime_checkable
class MaskInputEmbedder(Protocol):
    """What a ``crop_mode`` of ``MASK_INPUT_MODES`` asks of a region embedder: ``embed_regions(crops, masks)``,
    (N, S, S, 3) uint8 crops and their (N, S, S) uint8 masks (:func:`~.crops.crop_with_mask`) -> (N, D)
    L2-normalised float32; ``crop_mode``: the mode it was built for."""

    crop_mode: str

    def embed_regions(self, crops: np.ndarray, masks: np.ndarray) -> np.ndarray: ...


def _refuse(model: str, mode: str, what: str) -> ConfigError:
    return ConfigError(f"matching.crop_mode={mode} needs a ViT image tower; open_clip model {model!r} has {what}: "
                       f"choose a ViT model (e.g. clip.model=ViT-L-14-quickgelu) or matching.crop_mode=masked")


def mask_input_refusal(model: str, vision_cfg: Mapping[str, Any], mode: str) -> Optional[ConfigError]:
    """The error for an open_clip ``vision_cfg`` (its model JSON's) whose tower ``mode`` cannot run, else None."""
    if vision_cfg.get("timm_model_name"):
        return _refuse(model, mode, f"a timm tower ({vision_cfg['timm_model_name']})")
    if isinstance(vision_cfg.get("layers"), (list, tuple)):
        return _refuse(model, mode, "a ResNet tower")
    return None


def check_vit(visual: Any, model: str, mode: str) -> None:
    """Raise :class:`ConfigError` unless ``visual`` is an open_clip VisionTransformer."""
    from open_clip.transformer import VisionTransformer

    if not isinstance(visual, VisionTransformer):
        raise _refuse(model, mode, f"a {type(visual).__name__} tower")


def attach_alpha(visual: Any) -> None:
    """Give ``visual`` Alpha-CLIP's alpha patch embedding ``conv1_alpha``, zero-initialised (once)."""
    import torch

    if hasattr(visual, "conv1_alpha"):
        return
    rgb = visual.conv1
    alpha = torch.nn.Conv2d(1, rgb.out_channels, rgb.kernel_size, rgb.stride, bias=False)
    torch.nn.init.zeros_(alpha.weight)
    visual.conv1_alpha = alpha.to(device=rgb.weight.device, dtype=rgb.weight.dtype)


def attach_mask_prompt(visual: Any, depth: int) -> None:
    """Give ``visual`` OVSeg's ``mask_embedding``, (depth, Gh * Gw, width), drawn from N(0, 0.02^2) (once)."""
    import torch

    if hasattr(visual, "mask_embedding"):
        return
    grid = int(visual.grid_size[0] * visual.grid_size[1])
    weight = visual.conv1.weight
    prompts = torch.empty(depth, grid, weight.shape[0], device=weight.device, dtype=weight.dtype)
    visual.mask_embedding = torch.nn.Parameter(prompts.normal_(std=MASK_PROMPT_INIT_STD))


def alpha_input(masks: torch.Tensor) -> torch.Tensor:
    """(N, S, S) uint8 masks (0..255) -> (N, 1, S, S) float32 alpha, ``(m / 255 - 0.5) / 0.26``."""
    return ((masks.float() / 255.0 - ALPHA_MEAN) / ALPHA_STD).unsqueeze(1)


def patch_keep(masks: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, S, S) uint8 masks -> (N, Gh * Gw, 1) float32: 1.0 where a (patch x patch) cell holds a pixel of
    the mask (OVSeg's ``ceil(avg_pool(mask))``), 0.0 where it is fully masked."""
    import torch

    touched = torch.nn.functional.max_pool2d((masks > 0).float().unsqueeze(1), patch, patch) > 0
    return touched.flatten(1).unsqueeze(-1).float()


def patch_tokens(visual: Any, pixels: torch.Tensor, alpha: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(N, 3, S, S) pixels (and, for Alpha-CLIP, (N, 1, S, S) alpha) -> (N, Gh * Gw, C) patch embeddings."""
    x = visual.conv1(pixels)
    if alpha is not None:
        x = x + visual.conv1_alpha(alpha.to(x.dtype))
    return x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)


def embed_tokens(visual: Any, tokens: torch.Tensor) -> torch.Tensor:
    """(N, G, C) patch tokens -> (N, 1 + G, C): class token, positions, patch dropout and ``ln_pre``, as
    open_clip's ``VisionTransformer._embeds`` after its ``conv1``."""
    import torch

    cls = visual.class_embedding.to(tokens.dtype).view(1, 1, -1).expand(tokens.shape[0], -1, -1)
    x = torch.cat([cls, tokens], dim=1) + visual.positional_embedding.to(tokens.dtype)
    return visual.ln_pre(visual.patch_dropout(x))


def head(visual: Any, x: torch.Tensor) -> torch.Tensor:
    """(N, 1 + G, C) tokens after the blocks -> (N, D): the tower's pooling, ``ln_post`` and projection."""
    pooled, _ = visual._pool(x)
    return pooled @ visual.proj if visual.proj is not None else pooled


def alpha_forward(visual: Any, pixels: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Alpha-CLIP's image embedding (N, D) of pixels and their alpha channel (:func:`alpha_input`)."""
    return head(visual, visual.transformer(embed_tokens(visual, patch_tokens(visual, pixels, alpha))))


def _prompted(tokens: torch.Tensor, prompt: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """(N, G, C) patch tokens with the fully masked ones (keep 0) replaced by ``prompt`` ((G, C) or (1, C))."""
    return tokens * keep + prompt.unsqueeze(0) * (1 - keep)


def mask_prompt_forward(visual: Any, pixels: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """OVSeg's mask-prompted image embedding (N, D) of pixels and their patches' ``keep`` (:func:`patch_keep`)."""
    import torch

    tokens = patch_tokens(visual, pixels)
    prompts, keep = visual.mask_embedding.to(tokens.dtype), keep.to(tokens.dtype)
    x = embed_tokens(visual, _prompted(tokens, prompts[0], keep))
    transformer = visual.transformer
    for depth, block in enumerate(transformer.resblocks, start=1):
        x = block(x) if transformer.batch_first else block(x.transpose(0, 1)).transpose(0, 1)
        if depth < len(prompts):
            x = torch.cat([x[:, :1], _prompted(x[:, 1:], prompts[depth], keep)], dim=1)
    return head(visual, x)
