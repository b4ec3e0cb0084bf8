"""Dense region embeddings (crop_mode=dense): the canvas frame, exact patch coverage and pooling, the
positional-embedding resize against open_clip's, MaskCLIP's value path, and the tiny random ViT end to end."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import dense
from ovlabel.engine.matching import embedder as clip_module
from ovlabel.engine.matching import ImageInput, RegionMatcher
from ovlabel.engine.shipped import config_path
from tests.engine.matching.helpers import B, BIG, IN1, TableEmbedder, box_mask, config, noise_image, noun, parse

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


@pytest.fixture(scope="module")
def tiny_clip() -> clip_module.OpenClipEmbedder:
    from ovlabel.pipelines.options import load_run_config

    cfg = load_run_config(config_path("tiny.yaml")).clip  # ovlabel-tiny-clip: ViT, 64 px, patch 16, random weights
    return clip_module.build_embedder(cfg, "cpu")


def _masks(*boxes: tuple[int, int, int, int], size: tuple[int, int] = (64, 64)) -> MaskBatch:
    return MaskBatch.from_masks(np.stack([box_mask(b, size) for b in boxes]))


def test_frame_fits_the_long_side_and_pads_to_whole_patches() -> None:
    frame = dense.Frame.fit((100, 200), 128, 16)
    assert (frame.resized, frame.grid, frame.offset) == ((64, 128), (4, 8), (0, 0))
    odd = dense.Frame.fit((60, 200), 128, 16)  # 38.4 -> 38 rows need 3 patch rows (48), centred
    assert (odd.resized, odd.grid, odd.offset) == ((38, 128), (3, 8), (5, 0))
    canvas = dense.canvas(noise_image(0, (60, 200)), odd, (1, 2, 3))
    assert canvas.shape == (48, 128, 3) and (canvas[:5] == (1, 2, 3)).all() and (canvas[43:] == (1, 2, 3)).all()
    assert not (canvas[5:43] == (1, 2, 3)).all(axis=-1).all()


def test_a_mask_covering_exactly_one_patch_weighs_only_that_patch() -> None:
    frame = dense.Frame.fit((64, 64), 64, 16)  # 4 x 4 grid, one pixel per canvas pixel
    weights, cells = dense.coverage(_masks((32, 16, 48, 32), (0, 0, 8, 16)), frame)  # x0, y0, x1, y1
    expected = np.zeros((4, 4), np.float32)
    expected[1, 2] = 1.0
    np.testing.assert_array_equal(weights[0], expected)
    assert weights[1][0, 0] == 0.5 and weights[1].sum() == 0.5  # half of patch (0, 0)
    assert cells.tolist() == [[1, 2], [0, 0]]
    grid = np.random.default_rng(0).normal(size=(4, 4, 8)).astype(np.float32)
    grid /= np.linalg.norm(grid, axis=-1, keepdims=True)
    pooled = dense.pool(grid, weights, cells)
    np.testing.assert_allclose(pooled[0], grid[1, 2], atol=1e-6)
    np.testing.assert_allclose(pooled[1], grid[0, 0], atol=1e-6)


def test_coverage_is_the_exact_area_when_pixels_straddle_patches() -> None:
    frame = dense.Frame.fit((100, 100), 64, 16)  # 0.64 canvas pixels per image pixel
    weights, cells = dense.coverage(_masks((10, 20, 73, 41), (0, 0, 100, 100), size=(100, 100)), frame)
    assert weights[0].sum() * 16 ** 2 == pytest.approx(63 * 21 * 0.64 ** 2, rel=1e-5)
    np.testing.assert_allclose(weights[1], np.ones((4, 4)), rtol=1e-5)  # the whole image covers every patch
    assert ((weights >= 0) & (weights <= 1 + 1e-6)).all()
    assert cells[0].tolist() == [int((30.5 * 0.64) // 16), int((41.5 * 0.64) // 16)]


def test_weights_summing_to_zero_take_the_centroid_patch() -> None:
    grid = np.random.default_rng(1).normal(size=(3, 5, 4)).astype(np.float32)
    grid /= np.linalg.norm(grid, axis=-1, keepdims=True)
    weights = np.zeros((2, 3, 5), np.float32)
    weights[1, 0, 0] = 1.0
    pooled = dense.pool(grid, weights, np.array([[2, 3], [1, 1]]))
    np.testing.assert_allclose(pooled, np.stack([grid[2, 3], grid[0, 0]]), atol=1e-6)


def test_pos_embed_resize_is_open_clips() -> None:
    from open_clip.model import resize_pos_embed

    pos = torch.randn(1 + 4 * 4, 8)
    assert dense.resized_pos_embed(pos, (4, 4), (4, 4)) is pos  # native size: identity, as open_clip's
    state = {"visual.positional_embedding": pos.clone()}
    resize_pos_embed(state, SimpleNamespace(visual=SimpleNamespace(grid_size=(4, 4))))
    torch.testing.assert_close(state["visual.positional_embedding"], pos)
    resize_pos_embed(state, SimpleNamespace(visual=SimpleNamespace(grid_size=(7, 7))))
    torch.testing.assert_close(dense.resized_pos_embed(pos, (4, 4), (7, 7)), state["visual.positional_embedding"])
    assert dense.resized_pos_embed(pos, (4, 4), (3, 6)).shape == (1 + 18, 8)


def test_value_path_is_the_block_on_a_single_token(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    """Attention over one token is out_proj(v) exactly: there the value path and the real block agree."""
    block = tiny_clip.model.visual.transformer.resblocks[-1]
    x = torch.randn(2, 1, 128)
    with torch.inference_mode():
        torch.testing.assert_close(dense.value_path(block, x), block(x))
        longer = torch.randn(1, 5, 128)
        assert not torch.allclose(dense.value_path(block, longer), block(longer))
        torch.testing.assert_close(dense.value_path(block, longer)[:, 2:3], dense.value_path(block, longer[:, 2:3]))


def test_patch_embeddings_have_the_grids_shape(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    visual = tiny_clip.model.visual
    with torch.inference_mode():
        assert dense.patch_embeddings(visual, torch.randn(2, 3, 64, 64)).shape == (2, 4, 4, 128)
        assert dense.patch_embeddings(visual, torch.randn(1, 3, 48, 128)).shape == (1, 3, 8, 128)
        grid = dense.grid_embeddings(visual, torch.randn(1, 3, 64, 96), flip_average=True)
    assert grid.shape == (4, 6, 128)
    torch.testing.assert_close(grid.norm(dim=-1), torch.ones(4, 6))


def test_embed_masks_pools_the_image_grid(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    image = noise_image(4, (64, 128))
    masks = _masks((32, 0, 48, 16), (0, 0, 128, 64), (40, 10, 90, 50), size=(64, 128))
    regions = tiny_clip.embed_masks(image, masks)
    assert regions.shape == (3, 128) and regions.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(regions, axis=1), 1.0, rtol=1e-5)
    assert tiny_clip.dense_resolution == 128  # DENSE_SCALE x the 64 px input
    frame = dense.Frame.fit((64, 128), 128, 16)  # 4 x 8 grid, the image as it is
    x = clip_module.normalise_crops(torch.from_numpy(dense.canvas(image, frame, (123, 117, 104))[None]),
                                    tiny_clip._mean, tiny_clip._std)
    with torch.inference_mode():
        grid = dense.grid_embeddings(tiny_clip.model.visual, x).numpy()
    np.testing.assert_allclose(regions[0], grid[0, 2], atol=1e-5)  # image box x 32..48, y 0..16 = patch (0, 2)
    assert tiny_clip.embed_masks(image, MaskBatch.empty((64, 128))).shape == (0, 128)


@pytest.mark.parametrize("kernels", ["torch", "onednn"])
def test_dense_mode_runs_bf16_on_a_cpu(tiny_clip: clip_module.OpenClipEmbedder, kernels: str) -> None:
    """bf16 weights (torch kernels) with a resized positional embedding (the canvas is not the model's 64 px): the
    CPU has no bf16 antialiased bicubic, so the resize runs in float32; or bf16 matmuls (oneDNN, the last block's
    value path through the packed in-projection); the regions agree with fp32's."""
    bf16 = clip_module.build_embedder(tiny_clip.cfg.model_copy(update={"precision": "bf16", "cpu_kernels": kernels}),
                                      "cpu")
    weights = torch.bfloat16 if kernels == "torch" else torch.float32
    assert next(bf16.model.parameters()).dtype == weights
    assert bf16.describe()["precision"] == ("bf16-weights" if kernels == "torch" else "bf16-matmuls")
    image = noise_image(4, (64, 128))
    masks = _masks((32, 0, 48, 16), (0, 0, 128, 64), (40, 10, 90, 50), size=(64, 128))
    fast, exact = bf16.embed_masks(image, masks), tiny_clip.embed_masks(image, masks)
    assert fast.dtype == np.float32 and not np.array_equal(fast, exact)
    assert float((fast * exact).sum(axis=1).min()) > 0.98
    pos = tiny_clip.model.visual.positional_embedding.detach()
    resized = dense.resized_pos_embed(pos.bfloat16(), (4, 4), (4, 8))
    assert resized.dtype == torch.bfloat16
    torch.testing.assert_close(resized.float(), dense.resized_pos_embed(pos.bfloat16().float(), (4, 4), (4, 8)),
                               atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("flip", [False, True])
def test_dense_labels_run_end_to_end_through_the_matcher(tiny_clip: clip_module.OpenClipEmbedder, flip: bool) -> None:
    emb = clip_module.OpenClipEmbedder(tiny_clip.model, tiny_clip.tokenizer,
                                       tiny_clip.cfg.model_copy(update={"flip_average": flip, "dense_resolution": 96}))
    masks = MaskBatch.from_masks(np.stack([box_mask(BIG), box_mask(IN1), box_mask(B)]))
    parses = (parse(noun("field", level="scene"), noun("dog", plural=True), noun("ear", level="part", parent=1)),)
    cfg = config(similarity_threshold=-1.0, probability_threshold=0.0, part_containment=0.8, crop_mode="dense")
    items = [ImageInput(noise_image(3), masks, parses), ImageInput(noise_image(5), masks, parses)]
    matcher = RegionMatcher(emb, cfg)
    batch = matcher.label_batch(items)
    assert batch == [matcher.label_batch([item])[0] for item in items]  # batch-independent
    assert all(tree[0].level == "scene" and len(tree) > 1 for tree in batch)
    found = matcher.match_batch(items[:1])[0]
    assert {m.label for m in found.matches} & {"dog", "ear"}


def test_dense_mode_needs_an_embedder_with_embed_masks() -> None:
    matcher = RegionMatcher(TableEmbedder(), config(crop_mode="dense"))
    item = ImageInput(noise_image(0), _masks((0, 0, 8, 8)), (parse(noun("dog")),))
    with pytest.raises(ConfigError, match="embed_masks"):
        matcher.label_batch([item])


def test_non_vit_towers_are_refused_in_one_line() -> None:
    for vision_cfg, what in [({"layers": [3, 4, 6, 3], "width": 64}, "ResNet"), ({"timm_model_name": "convnext_base"}, "timm"),
                             ({"layers": 12, "attentional_pool": True}, "attentional"), ({"layers": 12, "qk_norm": True}, "custom")]:
        error = dense.dense_refusal("m", vision_cfg)
        assert isinstance(error, ConfigError) and what in str(error) and "\n" not in str(error)
        assert "crop_mode=dense needs a ViT image tower" in str(error)
    assert dense.dense_refusal("ovlabel-tiny-clip", {"layers": 3, "width": 128, "patch_size": 16}) is None
    with pytest.raises(ConfigError, match="ViT image tower.*Identity"):
        dense.check_dense_tower(torch.nn.Identity(), "m")
