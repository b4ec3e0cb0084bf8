"""The open_clip embedder on the tiny config: crop modes, the text cache, flip averaging, pixel
normalisation and prompt ensembles (shared with scripts/train_demo_clip.py), checkpoint key prefixes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ovlabel.engine.config import ClipConfig
from ovlabel.engine.shipped import config_path
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import embedder as clip_module
from ovlabel.engine.matching import label_image
from tests.engine.matching.helpers import B, BIG, IN1, box_mask, config, noise_image, noun, parse

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


@pytest.fixture(scope="module")
def tiny_clip() -> clip_module.OpenClipEmbedder:
    from ovlabel.pipelines.options import load_run_config

    cfg = load_run_config(config_path("tiny.yaml")).clip
    return clip_module.build_embedder(cfg, "cpu")


@pytest.mark.parametrize("mode", ["masked", "box", "blend"])
def test_crop_modes_run_through_open_clip(tiny_clip: clip_module.OpenClipEmbedder, mode: str) -> None:
    image = noise_image(3)
    masks = MaskBatch.from_masks(np.stack([box_mask(BIG), box_mask(IN1), box_mask(B)]))
    parses = [parse(noun("field", level="scene"), noun("dog", plural=True), noun("ear", level="part", parent=1))]
    cfg = config(similarity_threshold=-1.0, probability_threshold=0.0, part_containment=0.8, crop_mode=mode)
    tree = label_image(tiny_clip, cfg, image, masks, parses)
    assert tree[0].level == "scene" and all(0.0 <= s.score <= 1.0 for s in tree)
    assert tiny_clip.crop_size == 64


def test_text_cache_is_bounded_and_transparent(tiny_clip: clip_module.OpenClipEmbedder,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clip_module, "TEXT_CACHE_SIZE", 2)
    tiny_clip._text_cache.clear()
    first = tiny_clip.embed_labels(["dog", "cat", "car", "dog"])
    assert list(tiny_clip._text_cache) == ["cat", "car"]
    again = tiny_clip.embed_labels(["dog", "cat", "car", "dog"])
    np.testing.assert_allclose(first, again, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert len(tiny_clip._text_cache) == 2
    assert ClipConfig().templates  # the prompt ensemble is configurable (clip.templates)


def test_flip_average_embeds_a_crop_and_its_mirror_alike(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    crops = np.stack([noise_image(5, (64, 64)), noise_image(6, (64, 64))])
    mirrored = np.ascontiguousarray(crops[:, :, ::-1])
    assert not np.allclose(tiny_clip.embed_crops(crops), tiny_clip.embed_crops(mirrored), atol=1e-3)
    flipping = clip_module.OpenClipEmbedder(tiny_clip.model, tiny_clip.tokenizer,
                                            tiny_clip.cfg.model_copy(update={"flip_average": True}), "cpu")
    both = flipping.embed_crops(crops)
    np.testing.assert_allclose(both, flipping.embed_crops(mirrored), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(flipping.embed_crops(crops[:1]), both[:1], atol=1e-6)  # batch-invariant


def test_pixel_normalisation_uses_the_models_mean_and_std(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    import torch

    mean, std = clip_module.pixel_stats(tiny_clip.model)
    assert mean.shape == std.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(mean.flatten().numpy(), np.array(clip_module.CLIP_MEAN) * 255.0, rtol=1e-6)
    np.testing.assert_allclose(std.flatten().numpy(), np.array(clip_module.CLIP_STD) * 255.0, rtol=1e-6)
    crops = torch.from_numpy(np.stack([noise_image(7, (4, 4))]))
    x = clip_module.normalise_crops(crops, mean, std)
    assert x.shape == (1, 3, 4, 4) and x.dtype == torch.float32
    expected = (crops[0, 1, 2, 0].item() - mean[0, 0, 0, 0].item()) / std[0, 0, 0, 0].item()
    assert x[0, 0, 1, 2].item() == pytest.approx(expected, rel=1e-6)
    assert clip_module.crop_size_of(tiny_clip.model) == tiny_clip.crop_size == 64


def test_label_embeddings_are_the_prompt_ensemble(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    import torch

    templates = tiny_clip.cfg.templates
    tokens = clip_module.prompt_tokens(tiny_clip.tokenizer, ["dog", "car"], templates)
    assert tokens.shape[:2] == (2, len(templates))
    with torch.inference_mode():
        features = clip_module.template_features(tiny_clip.model, tokens)
    np.testing.assert_allclose(features.norm(dim=-1).numpy(), 1.0, atol=1e-5)
    mean = features.mean(dim=1)
    np.testing.assert_allclose(clip_module.prompt_ensemble(features).numpy(),
                               (mean / mean.norm(dim=-1, keepdim=True)).numpy(), atol=1e-6)
    tiny_clip._text_cache.clear()
    np.testing.assert_allclose(tiny_clip.embed_labels(["dog", "car"]), clip_module.prompt_ensemble(features).numpy(),
                               atol=1e-5)


def test_module_prefix_is_stripped_only_when_every_key_has_it() -> None:
    assert clip_module._strip_prefix({"module.a": 1, "module.b": 2}) == {"a": 1, "b": 2}
    assert clip_module._strip_prefix({"module.a": 1, "b": 2}) == {"module.a": 1, "b": 2}
    assert clip_module._strip_prefix({"modules": 1}) == {"modules": 1} and clip_module._strip_prefix({}) == {}


def _with(tiny: clip_module.OpenClipEmbedder, **changes: object) -> clip_module.OpenClipEmbedder:
    return clip_module.OpenClipEmbedder(tiny.model, tiny.tokenizer, tiny.cfg.model_copy(update=changes), "cpu")


def test_encoder_work_counts_crops_rows_and_padding(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    crops = np.stack([noise_image(k, (64, 64)) for k in range(5)])
    plain = _with(tiny_clip, crops_per_batch=4)
    plain.embed_crops(crops)
    assert (plain.work.crops, plain.work.rows, plain.work.padding) == (5, 8, 3)
    assert plain.work.padding_fraction == pytest.approx(3 / 8)
    flipping = _with(tiny_clip, crops_per_batch=4, flip_average=True)
    flipping.embed_crops(crops)
    assert (flipping.work.crops, flipping.work.rows, flipping.work.padding) == (5, 16, 6)
    assert _with(tiny_clip).work.padding_fraction == 0.0  # nothing encoded yet


def test_a_crops_embedding_does_not_depend_on_its_chunk_mates(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    crops = np.stack([noise_image(k, (64, 64)) for k in range(6)])
    embedder = _with(tiny_clip, crops_per_batch=4)
    together = embedder.embed_crops(crops)
    np.testing.assert_array_equal(together[4:], embedder.embed_crops(crops[4:]))
    np.testing.assert_array_equal(together[1:2], embedder.embed_crops(crops[1:2]))


def test_bf16_precision_on_a_cpu_runs_bf16_weights(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    import torch

    crops = np.stack([noise_image(k, (64, 64)) for k in range(3)])
    bf16 = clip_module.build_embedder(tiny_clip.cfg.model_copy(update={"precision": "bf16", "cpu_kernels": "torch"}),
                                      "cpu")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16 and not tiny_clip.bf16
    assert (bf16.describe()["precision"], tiny_clip.describe()["precision"]) == ("bf16-weights", "fp32")
    fast, exact = bf16.embed_crops(crops), tiny_clip.embed_crops(crops)
    assert fast.dtype == np.float32 and not np.array_equal(fast, exact)  # really another arithmetic
    assert float((fast * exact).sum(axis=1).min()) > 0.98
    labels = bf16.embed_labels(["dog", "cat"])
    assert float((labels * tiny_clip.embed_labels(["dog", "cat"])).sum(axis=1).min()) > 0.98


def test_bf16_precision_with_onednn_runs_bf16_matmuls_closer_to_fp32(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    import torch

    from ovlabel.engine.packed import PackedAttention, packed_dtype

    crops = np.stack([noise_image(k, (64, 64)) for k in range(6)])
    cfg = tiny_clip.cfg.model_copy(update={"precision": "bf16"})
    matmuls = clip_module.build_embedder(cfg, "cpu")
    weights = clip_module.build_embedder(cfg.model_copy(update={"cpu_kernels": "torch"}), "cpu")
    assert matmuls.describe()["precision"] == "bf16-matmuls" and packed_dtype(matmuls.model.visual) == torch.bfloat16
    assert all(isinstance(b.attn, PackedAttention) for b in matmuls.model.visual.transformer.resblocks)
    assert next(matmuls.model.parameters()).dtype == torch.float32  # norms, embeddings, the text tower: fp32
    exact = tiny_clip.embed_crops(crops)
    near, far = [1.0 - float((e.embed_crops(crops) * exact).sum(axis=1).min()) for e in (matmuls, weights)]
    assert 0.0 < near < far / 3
    np.testing.assert_array_equal(matmuls.embed_labels(["dog"]), tiny_clip.embed_labels(["dog"]))  # text: fp32


def test_fp32_on_a_cpu_packs_the_image_tower_and_computes_the_same(tiny_clip: clip_module.OpenClipEmbedder) -> None:
    from ovlabel.engine.packed import packed_dtype

    crops = np.stack([noise_image(k, (64, 64)) for k in range(5)])
    plain = clip_module.build_embedder(tiny_clip.cfg.model_copy(update={"cpu_kernels": "torch"}), "cpu")
    assert packed_dtype(plain.model.visual) is None and packed_dtype(tiny_clip.model.visual) is not None
    np.testing.assert_allclose(tiny_clip.embed_crops(crops), plain.embed_crops(crops), atol=1e-5)


def test_a_checkpointed_model_is_not_announced_as_random(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import torch

    from ovlabel.engine.matching import build_clip_model

    random_model, _, _ = build_clip_model(ClipConfig(model="ovlabel-tiny-clip", pretrained=None, checkpoint="random"))
    path = tmp_path / "tiny.pt"
    torch.save(random_model.state_dict(), path)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_clip_model(ClipConfig(model="ovlabel-tiny-clip", pretrained=None, checkpoint=str(path)))
    assert not [r for r in caplog.records if "initialized randomly" in r.getMessage()]
    with caplog.at_level(logging.WARNING):  # random weights are what open_clip says: its warning stays
        build_clip_model(ClipConfig(model="ovlabel-tiny-clip", pretrained=None, checkpoint="random"))
    assert [r for r in caplog.records if "initialized randomly" in r.getMessage()]
    assert logging.getLogger().filters == []


def test_without_onednn_a_cpu_keeps_torch_kernels(tiny_clip: clip_module.OpenClipEmbedder,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from ovlabel.engine import packed

    monkeypatch.setattr(packed, "packing_available", lambda dtype=torch.float32: False)
    fp32 = clip_module.build_embedder(tiny_clip.cfg, "cpu")
    bf16 = clip_module.build_embedder(tiny_clip.cfg.model_copy(update={"precision": "bf16"}), "cpu")
    assert packed.packed_dtype(fp32.model.visual) is None and fp32.describe()["precision"] == "fp32"
    assert bf16.describe()["precision"] == "bf16-weights"  # the whole model cast, as clip.cpu_kernels=torch does
