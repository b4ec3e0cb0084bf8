"""Segment Anything model building: architecture data + checkpoint (or seeded random weights).

Architectures live in ``configs/models/sam.yaml`` (vit_h, vit_l, vit_b, and vit_tiny for tests).
The checkpoint is a path or URL (``masks.sam.checkpoint``); without one, the official file for the
model type is named in the error. ``random`` (or ``random:SEED``) builds the same model with
seeded random weights (smoke runs and benchmarks: :func:`ovlabel.engine.weights.random_weights_seed`).
"""
from __future__ import annotations

import functools
from typing import Any, Optional

import yaml

from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.shipped import shipped
from ovlabel.engine.errors import ConfigError, ModelWeightsError
from ovlabel.engine.weights import load_state_dict, random_weights_seed, verified_checkpoint


@functools.lru_cache(maxsize=1)
def sam_architectures() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(shipped("models", "sam.yaml").read_text())


def sam_architecture(model_type: str) -> dict[str, Any]:
    """The architecture ``masks.sam.model_type`` names; :class:`ConfigError` for one sam.yaml does not have."""
    archs = sam_architectures()
    if model_type not in archs:
        raise ConfigError(f"unknown masks.sam.model_type {model_type!r}; choose one of {sorted(archs)}")
    return archs[model_type]


def check_sam_weights(cfg: SamConfig) -> None:
    """Raise :class:`ModelWeightsError` naming the official file when no checkpoint (or ``random``) is set."""
    if cfg.checkpoint is not None:
        return
    url = (sam_architectures().get(cfg.model_type) or {}).get("checkpoint_url")
    name = url.rsplit("/", 1)[-1] if url else f"a {cfg.model_type} checkpoint"
    raise ModelWeightsError(f"no SAM checkpoint configured; download {name}"
                            f"{f' from {url}' if url else ''} and set masks.sam.checkpoint=/path/to/{name}")


def build_sam_model(cfg: SamConfig, device: str = "cpu") -> tuple[Any, Optional[str]]:
    """(segment_anything Sam in eval mode on ``device``, checkpoint sha256 or None for random weights)."""
    import torch
    from segment_anything.build_sam import _build_sam

    arch = sam_architecture(cfg.model_type)
    check_sam_weights(cfg)
    checkpoint_sha: Optional[str] = None
    seed = random_weights_seed(cfg.checkpoint)
    torch.manual_seed(seed or 0)
    sam = _build_sam(arch["encoder_embed_dim"], arch["encoder_depth"], arch["encoder_num_heads"],
                     list(arch["encoder_global_attn_indexes"]), checkpoint=None)
    if seed is None and cfg.checkpoint is not None:
        path, checkpoint_sha = verified_checkpoint(cfg.checkpoint, "masks.sam.checkpoint", cfg.checkpoint_sha256)
        missing, unexpected = sam.load_state_dict(load_state_dict(path), strict=False)
        if missing or unexpected:
            raise ModelWeightsError(f"checkpoint {str(path)!r} does not fit SAM {cfg.model_type} "
                                    f"({len(missing)} missing, {len(unexpected)} unexpected keys); check masks.sam.model_type")
    return sam.to(device).eval(), checkpoint_sha


def make_random_sam_coherent(model: Any, logit_scale: float = 30.0) -> None:
    """Make a random-weight SAM produce spatially coherent masks (tests and benchmarks only).

    With default random init the decoder's 2x2 transposed convolutions turn every low-res cell
    into a checkerboard, so masks are speckle noise. Tying each kernel's 4 taps makes them a
    nearest-neighbour upsampling (masks then follow the encoder features, i.e. the image's
    shapes), and ``logit_scale`` scales the hypernetwork outputs so logits reach the +-1
    stability offset. Edits ``model`` in place; apply the same call to every model compared.
    """
    import torch
    from torch import nn

    dec = model.mask_decoder
    with torch.no_grad():
        for module in dec.output_upscaling:
            if isinstance(module, nn.ConvTranspose2d):
                module.weight.copy_(module.weight[:, :, :1, :1].expand_as(module.weight))
        for mlp in dec.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(logit_scale)
            mlp.layers[-1].bias.mul_(logit_scale)
