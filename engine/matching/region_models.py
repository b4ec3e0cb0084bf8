"""Region encoders that see the mask: their checkpoints and their embedder (:mod:`.region_encoders` computes).

Checkpoint formats (OpenAI CLIP's state dict keys, which open_clip's ViTs share, are the base of both):

- ``clip.checkpoint``, a whole CLIP: open_clip's or OpenAI's keys, with or without the region encoder's
  parameters (``visual.conv1_alpha.weight``, ``visual.mask_embedding``); also Alpha-CLIP's naming of the
  image tower's attention (``attn.in_proj.weight``, an ``nn.Linear``, for open_clip's ``attn.in_proj_weight``),
  OpenAI's non-tensor entries (``input_resolution``...) and OVSeg's whole-model checkpoints (``{'model': ...}``
  with the CLIP under ``clip_adapter.clip_model.``), read by :func:`clip_state`. OVSeg's mask-adapted CLIP
  ``ovseg_clip_l_9a1909.pth`` is a whole CLIP state dict.
- ``clip.region_checkpoint``, the image tower alone, loaded over ``model.visual`` after the whole CLIP:
  Alpha-CLIP's published checkpoints (``clip_l14_grit20m_fultune_2xe.pth``: ``model.visual.state_dict()`` of
  Alpha-CLIP's ``VisionTransformer``, keys ``conv1.weight``, ``conv1_alpha.weight``,
  ``transformer.resblocks.0.attn.in_proj.weight``...), or the image tower of a whole CLIP in any of the
  formats above (OVSeg's mask prompts from its whole-model checkpoint, say) (:func:`tower_state`).

An Alpha-CLIP checkpoint without ``conv1_alpha`` leaves it at zero (as Alpha-CLIP's own ``build_model``
does), i.e. plain CLIP on the context crop; mask_prompt refuses weights without ``mask_embedding`` rather
than run untrained prompts, unless the weights are random (``clip.checkpoint: random``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ovlabel.engine.config import ClipConfig
from ovlabel.engine.errors import ConfigError, ModelWeightsError
from ovlabel.engine.matching.embedder import (OpenClipEmbedder, RegionEmbedder, build_clip_model, build_embedder,
                                              cast_for_cpu, encode_in_chunks, fit_state_dict)
from ovlabel.engine.matching.ensemble import EnsembleEmbedder, Member, member_errors
from ovlabel.engine.matching.region_encoders import (ALPHA_KEY, ALPHA_MODE, MASK_INPUT_MODES, MASK_PROMPT_KEY,
                                                     MASK_PROMPT_MODE, alpha_forward, alpha_input, attach_alpha,
                                                     attach_mask_prompt, check_vit, mask_input_refusal,
                                                     mask_prompt_forward, patch_keep)
from ovlabel.engine.weights import check_local_checkpoint, load_state_dict, verified_checkpoint

log = logging.getLogger(__name__)
OPENAI_EXTRAS = ("input_resolution", "context_length", "vocab_size")  # non-tensor entries of OpenAI's JIT files
OVSEG_PREFIX = "clip_adapter.clip_model."  # where OVSeg's whole-model checkpoints hold the CLIP
OVSEG_FILE = "ovseg_clip_l_9a1909.pth"  # OVSeg's mask-adapted CLIP ViT-L/14 (configs/ovseg-clip-l14.yaml)


def _renamed(key: str) -> str:
    """Alpha-CLIP's image tower attention (``attn.in_proj.weight``) as open_clip names it (``attn.in_proj_weight``)."""
    return key.replace(".attn.in_proj.weight", ".attn.in_proj_weight").replace(".attn.in_proj.bias", ".attn.in_proj_bias")


def _without_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries under ``prefix``, without it, when there are any; else ``state``."""
    inner = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return inner or state


def _refuse_lora(state: dict[str, Any], path: Path) -> None:
    lora = [k for k in state if "lora_" in k]
    if lora:
        raise ModelWeightsError(f"checkpoint {str(path)!r} holds LoRA weights ({lora[0]}...); merge them into the "
                                f"linear layers first and save the merged state dict")


def clip_state(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """A whole CLIP's state dict in any of the formats above -> open_clip's keys."""
    if isinstance(state.get("model"), dict):  # a detectron2 checkpoint: OVSeg's whole model
        state = state["model"]
    state = _without_prefix(state, OVSEG_PREFIX)
    _refuse_lora(state, path)
    return {_renamed(k): v for k, v in state.items() if k not in OPENAI_EXTRAS}


def tower_state(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """An image tower's state dict (Alpha-CLIP's visual checkpoint), or the ``visual.`` part of a whole CLIP's
    in any of :func:`clip_state`'s formats -> the keys of open_clip's ``model.visual``."""
    return _without_prefix(clip_state(_without_prefix(state, "module."), path), "visual.")


class AlphaPatch:
    """The :class:`~.embedder.TowerPatch` of crop_mode alpha: a zero ``conv1_alpha`` a checkpoint may fill."""

    optional = (ALPHA_KEY,)

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def attach(self, model: Any) -> None:
        check_vit(model.visual, self.model_name, ALPHA_MODE)
        attach_alpha(model.visual)

    def convert(self, state: dict[str, Any], path: Path) -> dict[str, Any]:
        state = clip_state(state, path)
        if ALPHA_KEY not in state:
            log.info("%s holds no %s: the alpha channel starts at zero (plain CLIP)", path.name, ALPHA_KEY)
        return state


def _fitted_prompts(prompts: Any, depth: int, grid: int, where: str) -> Any:
    """OVSeg's ``mask_embedding`` ((depth, G or 1, C)) checked against ``clip.mask_prompt_depth``, one shared
    prompt per layer spread over the G patches (as OVSeg's forward repeats it)."""
    if prompts.ndim != 3 or prompts.shape[0] != depth:
        raise ModelWeightsError(f"{where} has mask prompts of shape {tuple(prompts.shape)}, not ({depth}, patches, "
                                f"width); set clip.mask_prompt_depth={prompts.shape[0] if prompts.ndim == 3 else '?'}")
    return prompts.expand(depth, grid, prompts.shape[2]).clone() if prompts.shape[1] == 1 else prompts


class MaskPromptPatch:
    """The :class:`~.embedder.TowerPatch` of crop_mode mask_prompt: ``mask_embedding``, which the checkpoint
    must hold unless ``clip.region_checkpoint`` brings it."""

    optional = (MASK_PROMPT_KEY,)

    def __init__(self, cfg: ClipConfig) -> None:
        self.cfg = cfg
        self._grid = 0

    def attach(self, model: Any) -> None:
        check_vit(model.visual, self.cfg.model, MASK_PROMPT_MODE)
        attach_mask_prompt(model.visual, self.cfg.mask_prompt_depth)
        self._grid = int(model.visual.mask_embedding.shape[1])

    def convert(self, state: dict[str, Any], path: Path) -> dict[str, Any]:
        state = clip_state(state, path)
        if MASK_PROMPT_KEY in state:
            state[MASK_PROMPT_KEY] = _fitted_prompts(state[MASK_PROMPT_KEY], self.cfg.mask_prompt_depth, self._grid,
                                                     f"checkpoint {str(path)!r}")
        elif self.cfg.region_checkpoint is None:
            raise ModelWeightsError(f"checkpoint {str(path)!r} holds no {MASK_PROMPT_KEY} (OVSeg's mask prompts) for "
                                    f"matching.crop_mode=mask_prompt; use OVSeg's {OVSEG_FILE}, set "
                                    f"clip.region_checkpoint, or matching.crop_mode=masked")
        return state


def check_mask_input(cfg: ClipConfig, mode: str) -> None:
    """What :func:`build_region_embedder` would refuse for ``mode``, loading nothing (preflight): a tower that is
    no ViT, a missing ``clip.region_checkpoint`` (or wrong sha256), mask prompts with nowhere to come from."""
    import open_clip

    if mode not in MASK_INPUT_MODES:
        if cfg.region_checkpoint is not None:
            raise ConfigError(f"clip.region_checkpoint is only read with matching.crop_mode=alpha or mask_prompt "
                              f"(crop_mode is {mode}); unset it or choose one of those")
        return
    refusal = mask_input_refusal(cfg.model, (open_clip.get_model_config(cfg.model) or {}).get("vision_cfg", {}), mode)
    if refusal is not None:
        raise refusal
    check_local_checkpoint(cfg.region_checkpoint, "clip.region_checkpoint", cfg.region_checkpoint_sha256)
    if mode == MASK_PROMPT_MODE and cfg.checkpoint is None and cfg.region_checkpoint is None:
        raise ModelWeightsError(f"matching.crop_mode=mask_prompt needs OVSeg's learned mask prompts, which "
                                f"clip.pretrained={cfg.pretrained} lacks: download {OVSEG_FILE} and set "
                                f"clip.checkpoint=/path/to/{OVSEG_FILE} (configs/ovseg-clip-l14.yaml)")


def load_region_checkpoint(visual: Any, cfg: ClipConfig, mode: str) -> str:
    """Load ``clip.region_checkpoint`` (an image tower, :func:`tower_state`) over ``visual``; its sha256."""
    assert cfg.region_checkpoint is not None
    path, sha = verified_checkpoint(cfg.region_checkpoint, "clip.region_checkpoint", cfg.region_checkpoint_sha256)
    state = tower_state(load_state_dict(path), path)
    key = ALPHA_KEY if mode == ALPHA_MODE else MASK_PROMPT_KEY
    short = key[len("visual."):]
    if short not in state:
        raise ModelWeightsError(f"clip.region_checkpoint {str(path)!r} holds no {short} for matching.crop_mode={mode}; "
                                f"is it {'an Alpha-CLIP' if mode == ALPHA_MODE else 'an OVSeg'} checkpoint?")
    if mode == MASK_PROMPT_MODE:
        state[short] = _fitted_prompts(state[short], cfg.mask_prompt_depth, int(visual.mask_embedding.shape[1]),
                                       f"clip.region_checkpoint {str(path)!r}")
    fit_state_dict(visual, state, f"clip.region_checkpoint {str(path)!r}",
                   f"the image tower of open_clip model {cfg.model!r}")
    return sha


class OpenClipMaskInputEmbedder(OpenClipEmbedder):
    """An :class:`~.embedder.OpenClipEmbedder` whose image tower also takes each region's mask: Alpha-CLIP's
    alpha channel or OVSeg's mask prompts (``crop_mode``); :meth:`embed_regions` batches as ``embed_crops``
    (fixed-size padded chunks, flip averaging, bf16). ``embed_crops`` stays plain CLIP."""

    def __init__(self, model: Any, tokenizer: Any, cfg: ClipConfig, crop_mode: str, device: str = "cpu",
                 checkpoint_sha256: Optional[str] = None, region_checkpoint_sha256: Optional[str] = None) -> None:
        if crop_mode not in MASK_INPUT_MODES:
            raise ConfigError(f"crop mode {crop_mode!r} takes no mask; choose one of {MASK_INPUT_MODES}")
        check_vit(model.visual, cfg.model, crop_mode)
        super().__init__(model, tokenizer, cfg, device, checkpoint_sha256)
        self.crop_mode = crop_mode
        self.region_checkpoint_sha256 = region_checkpoint_sha256

    def _encode(self, crops: np.ndarray, masks: np.ndarray) -> Any:
        import torch

        visual, pixels = self.model.visual, self._pixels(crops)
        masks_t = torch.from_numpy(masks).to(self.device)
        if self.crop_mode == ALPHA_MODE:
            return alpha_forward(visual, pixels, alpha_input(masks_t).to(self._dtype))
        return mask_prompt_forward(visual, pixels, patch_keep(masks_t, int(visual.patch_size[0])))

    def embed_regions(self, crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 crops and (N, S, S) uint8 masks (255 inside) -> (N, D) float32, L2-normalised."""
        if crops.shape[:3] != masks.shape:
            raise ValueError(f"crops {crops.shape} and masks {masks.shape} differ")
        return encode_in_chunks(self, (crops, masks), self._encode)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "crop_mode": self.crop_mode, "region_checkpoint": self.cfg.region_checkpoint,
                "region_checkpoint_sha256": self.region_checkpoint_sha256}


def build_region_embedder(cfg: ClipConfig, crop_mode: str, device: str = "cpu") -> RegionEmbedder:
    """The embedder ``matching.crop_mode`` needs: for alpha and mask_prompt the configured open_clip model with
    the region encoder attached and its weights loaded (:class:`OpenClipMaskInputEmbedder`), else
    :func:`~.embedder.build_embedder`'s; with ``clip.ensemble`` an :class:`~.ensemble.EnsembleEmbedder` of that
    model and each member's, built the same way in the member's crop mode."""
    if not cfg.ensemble:
        return _build_one(cfg, crop_mode, device)
    members = [Member(_build_one(cfg.without_ensemble(), crop_mode, device), crop_mode, cfg.primary_weight)]
    for index, member in enumerate(cfg.ensemble):
        with member_errors(index, member.crop_mode):
            members.append(Member(_build_one(cfg.member(index), member.crop_mode, device), member.crop_mode,
                                  member.weight))
    return EnsembleEmbedder(members)


def _build_one(cfg: ClipConfig, crop_mode: str, device: str) -> RegionEmbedder:
    if crop_mode not in MASK_INPUT_MODES:
        return build_embedder(cfg, device)
    check_mask_input(cfg, crop_mode)
    patch = AlphaPatch(cfg.model) if crop_mode == ALPHA_MODE else MaskPromptPatch(cfg)
    model, tokenizer, sha = build_clip_model(cfg, device, patch)
    region_sha = load_region_checkpoint(model.visual, cfg, crop_mode) if cfg.region_checkpoint else None
    if crop_mode == ALPHA_MODE and cfg.region_checkpoint is None and cfg.checkpoint is None:
        log.info("no Alpha-CLIP weights (clip.region_checkpoint): the alpha channel is zero, plain CLIP on context crops")
    return OpenClipMaskInputEmbedder(cast_for_cpu(model, cfg, device), tokenizer, cfg, crop_mode, device, sha,
                                     region_sha)
