"""Region encoders that see the mask, against the papers' own code: Alpha-CLIP's and OVSeg's image towers.

The reference forwards are vendored, minimal and unchanged, in ``tests/engine/matching/reference/``:
``alpha_clip_model.py`` from SunzeY/AlphaCLIP (``alpha_clip/model.py``, Apache-2.0) and ``ovseg_model.py`` from
facebookresearch/ov-seg (``open_clip_training/src/open_clip/model.py``, OpenCLIP's MIT licence); each file
names its commit. Each test builds the reference with small random weights, saves its state dict in the
published checkpoint's format (Alpha-CLIP: ``model.visual.state_dict()``, ``attn.in_proj.weight`` naming;
OVSeg: a whole CLIP with ``visual.mask_embedding``, as ``ovseg_clip_l_9a1909.pth``, an open_clip training
checkpoint, or a whole OVSeg model), loads it through ``build_region_embedder`` into an open_clip ViT of the
same shape, and compares the embeddings of random crops and random masks.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ovlabel.engine.config import ClipConfig
from ovlabel.engine.errors import ModelWeightsError
from ovlabel.engine.matching import build_embedder, build_region_embedder
from ovlabel.engine.matching.embedder import CLIP_MEAN, CLIP_STD
from tests.engine.matching.reference import alpha_clip_model, ovseg_model

SIDE, PATCH, WIDTH, LAYERS, HEADS, DIM = 32, 8, 128, 3, 2, 64
ARCH = {"embed_dim": DIM, "quick_gelu": True,  # OpenAI CLIP's activation, which both papers fine-tune
        "vision_cfg": {"image_size": SIDE, "layers": LAYERS, "width": WIDTH, "patch_size": PATCH, "head_width": 64},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}


@pytest.fixture(scope="module")
def arch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("arch") / "region-test-clip.json"
    path.write_text(json.dumps(ARCH))
    return path


def _clip_cfg(arch: Path, **changes: Any) -> ClipConfig:
    base: dict[str, Any] = {"model": "region-test-clip", "model_config_file": str(arch), "pretrained": None,
                            "checkpoint": "random", "crops_per_batch": 4, "precision": "fp32"}
    return ClipConfig(**{**base, **changes})


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Every weight random, norms and biases too, so no part of a tower is an identity by chance."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            elif "ln" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif "alpha" in name or "mask_embedding" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))


def _crops(seed: int, n: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIDE, SIDE, 3), dtype=np.uint8)


def _masks(seed: int, n: int = 6, soft: bool = False) -> np.ndarray:
    """(n, S, S) uint8 masks: a random box of random pixels each, so some patches are fully masked, some not."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, SIDE, SIDE), np.uint8)
    for k in range(n):
        y0, x0 = rng.integers(0, SIDE // 2, 2)
        y1, x1 = rng.integers(SIDE // 2 + 2, SIDE + 1, 2)
        inside = rng.random((y1 - y0, x1 - x0)) < 0.6
        out[k, y0:y1, x0:x1] = np.where(inside, rng.integers(1, 256, inside.shape) if soft else 255, 0)
    return out


def _reference_pixels(crops: np.ndarray) -> torch.Tensor:
    """The papers' preprocessing of crops already at size: ToTensor, Normalize(CLIP's mean and std)."""
    from torchvision import transforms

    t = transforms.Compose([transforms.ToTensor(), transforms.Normalize(CLIP_MEAN, CLIP_STD)])
    return torch.stack([t(c) for c in crops])


def _unit(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).detach().numpy()


def _text_state(arch: Path) -> dict[str, torch.Tensor]:
    """The text tower's state dict of an open_clip model of the test architecture (OpenAI's keys too)."""
    import open_clip

    open_clip.add_model_config(arch)
    torch.manual_seed(99)
    model = open_clip.create_model("region-test-clip", pretrained=None)
    return {k: v for k, v in model.state_dict().items() if not k.startswith("visual.")}


# --- Alpha-CLIP -----------------------------------------------------------------------------------------

def _alpha_reference(seed: int = 0) -> alpha_clip_model.VisionTransformer:
    torch.manual_seed(seed)
    ref = alpha_clip_model.VisionTransformer(SIDE, PATCH, WIDTH, LAYERS, HEADS, DIM).eval()
    _randomise(ref, seed)
    return ref


def _alpha_reference_embeddings(ref: torch.nn.Module, crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Alpha-CLIP's README: ``alpha = Normalize(0.5, 0.26)(ToTensor()(binary_mask * 255))``; ``model.visual(image, alpha)``."""
    from torchvision import transforms

    alpha_t = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.5, 0.26)])
    alpha = torch.stack([alpha_t(m) for m in masks])
    with torch.no_grad():
        return _unit(ref(_reference_pixels(crops), alpha))


@pytest.mark.parametrize("layout", ["visual_only", "visual_prefixed"])
def test_alpha_matches_alpha_clips_reference(arch: Path, tmp_path: Path, layout: str) -> None:
    ref = _alpha_reference()
    state = ref.state_dict()  # what Alpha-CLIP publishes: model.visual.state_dict()
    assert "conv1_alpha.weight" in state and "transformer.resblocks.0.attn.in_proj.weight" in state
    if layout == "visual_prefixed":
        state = {f"visual.{k}": v for k, v in state.items()}
    torch.save(state, tmp_path / "clip_test_alpha.pth")
    ours = build_region_embedder(_clip_cfg(arch, region_checkpoint=str(tmp_path / "clip_test_alpha.pth")), "alpha")
    crops, masks = _crops(1), _masks(2, soft=True)
    expected = _alpha_reference_embeddings(ref, crops, masks)
    np.testing.assert_allclose(ours.embed_regions(crops, masks), expected, atol=1e-5)
    other = _alpha_reference_embeddings(ref, crops, _masks(3, soft=True))  # the mask matters
    assert np.abs(other - expected).max() > 1e-2
    assert ours.describe()["region_checkpoint_sha256"] is not None


def test_alpha_loads_a_whole_alpha_clip_state_dict_as_the_clip_checkpoint(arch: Path, tmp_path: Path) -> None:
    ref = _alpha_reference(4)
    whole = {**_text_state(arch), **{f"visual.{k}": v for k, v in ref.state_dict().items()},
             "input_resolution": torch.tensor(SIDE)}  # OpenAI's non-tensor entries are dropped
    torch.save(whole, tmp_path / "alpha_whole.pt")
    ours = build_region_embedder(_clip_cfg(arch, checkpoint=str(tmp_path / "alpha_whole.pt")), "alpha")
    crops, masks = _crops(5), _masks(6)
    np.testing.assert_allclose(ours.embed_regions(crops, masks), _alpha_reference_embeddings(ref, crops, masks),
                               atol=1e-5)


def test_a_region_checkpoint_without_the_alpha_weights_is_refused(arch: Path, tmp_path: Path) -> None:
    state = {k: v for k, v in _alpha_reference().state_dict().items() if k != "conv1_alpha.weight"}
    torch.save(state, tmp_path / "plain.pth")
    with pytest.raises(ModelWeightsError, match="holds no conv1_alpha.weight for matching.crop_mode=alpha"):
        build_region_embedder(_clip_cfg(arch, region_checkpoint=str(tmp_path / "plain.pth")), "alpha")
    lora = {**_alpha_reference().state_dict(), "transformer.resblocks.0.attn.in_proj.lora_A": torch.zeros(2, 2)}
    torch.save(lora, tmp_path / "lora.pth")
    with pytest.raises(ModelWeightsError, match="holds LoRA weights"):
        build_region_embedder(_clip_cfg(arch, region_checkpoint=str(tmp_path / "lora.pth")), "alpha")


# --- OVSeg ----------------------------------------------------------------------------------------------

def _ovseg_reference(seed: int = 0, shared_prompt: bool = False) -> ovseg_model.VisualTransformer:
    torch.manual_seed(seed)
    ref = ovseg_model.VisualTransformer(SIDE, PATCH, WIDTH, LAYERS, HEADS, 4.0, DIM, ovseg_model.QuickGELU,
                                        mask_emb_depth=3).eval()
    if shared_prompt:  # one prompt per layer for every patch: OVSeg's forward repeats it
        ref.mask_embedding = torch.nn.Parameter(torch.zeros(3, 1, WIDTH))
    _randomise(ref, seed)
    return ref


def _ovseg_reference_embeddings(ref: torch.nn.Module, crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """OVSeg's MaskFormerClipAdapter with MASK_PROMPT_FWD: ``clip_model.visual(regions, region_masks)``, the
    region masks (K, 1, S, S) 0/1 floats."""
    m = torch.from_numpy(masks > 0).float().unsqueeze(1)
    with torch.no_grad():
        return _unit(ref(_reference_pixels(crops), m))


def _save_ovseg(ref: torch.nn.Module, arch: Path, path: Path, layout: str) -> None:
    """The OVSeg CLIP's state dict (OpenAI CLIP's keys plus visual.mask_embedding) in one of its layouts."""
    whole = {**_text_state(arch), **{f"visual.{k}": v for k, v in ref.state_dict().items()}}
    if layout == "open_clip_training":  # what ov-seg's mask prompt tuning saves (epoch_N.pt)
        whole = {"epoch": 2, "name": "mask_prompt_tuning", "state_dict": {f"module.{k}": v for k, v in whole.items()}}
    elif layout == "ovseg_model":  # a whole OVSeg model (detectron2): the CLIP under clip_adapter.clip_model.
        whole = {"model": {**{f"clip_adapter.clip_model.{k}": v for k, v in whole.items()},
                           "sem_seg_head.predictor.class_embed.weight": torch.zeros(3, 3)}, "iteration": 7}
    torch.save(whole, path)


@pytest.mark.parametrize("layout", ["state_dict", "open_clip_training", "ovseg_model", "shared_prompt"])
def test_mask_prompt_matches_ovsegs_reference(arch: Path, tmp_path: Path, layout: str) -> None:
    ref = _ovseg_reference(shared_prompt=layout == "shared_prompt")
    _save_ovseg(ref, arch, tmp_path / "ovseg_clip_test.pth", layout)
    ours = build_region_embedder(_clip_cfg(arch, checkpoint=str(tmp_path / "ovseg_clip_test.pth")), "mask_prompt")
    crops, masks = _crops(7), _masks(8)
    keep = torch.nn.functional.max_pool2d(torch.from_numpy(masks > 0).float()[:, None], PATCH).flatten(1)
    assert 0 < keep.mean() < 1  # some patches fully masked, some not: the prompts are used
    expected = _ovseg_reference_embeddings(ref, crops, masks)
    np.testing.assert_allclose(ours.embed_regions(crops, masks), expected, atol=1e-5)
    with torch.no_grad():
        plain = _unit(ref(_reference_pixels(crops)))
    assert np.abs(plain - expected).max() > 1e-2  # the prompts matter
    text = _text_state(arch)["text_projection"]
    assert torch.equal(ours.model.state_dict()["text_projection"], text)  # the text tower is the file's


def test_mask_prompt_refuses_weights_without_prompts_or_of_another_depth(arch: Path, tmp_path: Path) -> None:
    ref = _ovseg_reference()
    _save_ovseg(ref, arch, tmp_path / "ovseg.pth", "state_dict")
    with pytest.raises(ModelWeightsError, match=r"mask prompts of shape \(3, 16, 128\).*clip.mask_prompt_depth=3"):
        build_region_embedder(_clip_cfg(arch, checkpoint=str(tmp_path / "ovseg.pth"), mask_prompt_depth=2),
                              "mask_prompt")
    plain = {k: v for k, v in torch.load(tmp_path / "ovseg.pth").items() if k != "visual.mask_embedding"}
    torch.save(plain, tmp_path / "plain.pth")
    with pytest.raises(ModelWeightsError, match="holds no visual.mask_embedding"):
        build_region_embedder(_clip_cfg(arch, checkpoint=str(tmp_path / "plain.pth")), "mask_prompt")
    assert build_region_embedder(_clip_cfg(arch, checkpoint=str(tmp_path / "plain.pth")), "masked") is not None


def test_mask_prompts_may_come_from_a_region_checkpoint(arch: Path, tmp_path: Path) -> None:
    ref = _ovseg_reference(2)
    _save_ovseg(ref, arch, tmp_path / "ovseg_whole_model.pth", "ovseg_model")  # its image tower is taken alone
    ours = build_region_embedder(_clip_cfg(arch, region_checkpoint=str(tmp_path / "ovseg_whole_model.pth")),
                                 "mask_prompt")
    crops, masks = _crops(15), _masks(16)
    np.testing.assert_allclose(ours.embed_regions(crops, masks), _ovseg_reference_embeddings(ref, crops, masks),
                               atol=1e-5)


# --- both, on the demo's tiny architecture -------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny() -> ClipConfig:
    return ClipConfig(model="ovlabel-tiny-clip", pretrained=None, checkpoint="random", crops_per_batch=4)


def test_untrained_alpha_is_plain_clip_on_the_context_crop(tiny: ClipConfig) -> None:
    from ovlabel.engine.matching.crops import crop_with_mask

    image = np.random.default_rng(9).integers(0, 256, (80, 120, 3), dtype=np.uint8)
    masks = np.zeros((3, 80, 120), bool)
    masks[0, 10:30, 20:50], masks[1, 40:79, 5:40], masks[2, 0:80, 100:120] = True, True, True
    pairs = [crop_with_mask(image, m, "alpha", 64, 2.0) for m in masks]
    crops, alphas = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    alpha = build_region_embedder(tiny, "alpha")
    assert not alpha.model.visual.conv1_alpha.weight.any()  # Alpha-CLIP's zero initialisation
    plain = build_embedder(tiny).embed_crops(crops)
    np.testing.assert_allclose(alpha.embed_regions(crops, alphas), plain, atol=1e-6)
    with torch.no_grad():
        alpha.model.visual.conv1_alpha.weight.normal_(std=0.1)
    assert np.abs(alpha.embed_regions(crops, alphas) - plain).max() > 1e-2


def test_a_mask_covering_every_patch_is_plain_clip_for_mask_prompts(tiny: ClipConfig) -> None:
    crops, full = _crops(10, 5), np.full((5, SIDE, SIDE), 255, np.uint8)
    crops = np.stack([np.kron(c, np.ones((2, 2, 1), np.uint8)) for c in crops])  # 64 x 64, the tiny CLIP's size
    prompted = build_region_embedder(tiny, "mask_prompt")
    plain = build_embedder(tiny).embed_crops(crops)
    np.testing.assert_allclose(prompted.embed_regions(crops, np.kron(full, np.ones((1, 2, 2), np.uint8))), plain,
                               atol=1e-6)


@pytest.mark.parametrize("mode", ["alpha", "mask_prompt"])
def test_results_do_not_depend_on_the_batch(tiny: ClipConfig, mode: str) -> None:
    cfg = tiny.model_copy(update={"flip_average": True})
    embedder = build_region_embedder(cfg, mode)
    if mode == "alpha":
        with torch.no_grad():
            embedder.model.visual.conv1_alpha.weight.normal_(std=0.1)
    crops = np.stack([np.kron(c, np.ones((2, 2, 1), np.uint8)) for c in _crops(11, 6)])
    masks = np.kron(_masks(12, 6), np.ones((1, 2, 2), np.uint8))
    together = embedder.embed_regions(crops, masks)
    alone = np.concatenate([embedder.embed_regions(crops[k:k + 1], masks[k:k + 1]) for k in range(6)])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert embedder.work.rows == 2 * (8 + 6 * 4)  # chunks of 4, flipped: one stream of 6, then 6 of 1


@pytest.mark.parametrize("kernels", ["torch", "onednn"])
@pytest.mark.parametrize("mode", ["alpha", "mask_prompt"])
def test_bf16_on_a_cpu_runs_the_region_parameters_too(tiny: ClipConfig, mode: str, kernels: str) -> None:
    """torch kernels: the region parameters cast to bf16 with the rest; oneDNN: bf16 matmuls, the rest fp32."""
    fp32 = build_region_embedder(tiny, mode)
    bf16 = build_region_embedder(tiny.model_copy(update={"precision": "bf16", "cpu_kernels": kernels}), mode)
    extra = bf16.model.visual.conv1_alpha.weight if mode == "alpha" else bf16.model.visual.mask_embedding
    want = ("bf16-weights", torch.bfloat16) if kernels == "torch" else ("bf16-matmuls", torch.float32)
    assert (bf16.describe()["precision"], extra.dtype) == want
    crops = np.stack([np.kron(c, np.ones((2, 2, 1), np.uint8)) for c in _crops(13, 4)])
    masks = np.kron(_masks(14, 4), np.ones((1, 2, 2), np.uint8))
    cosines = (fp32.embed_regions(crops, masks) * bf16.embed_regions(crops, masks)).sum(axis=1)
    assert cosines.min() > 0.98
