"""The open_clip embedder on the tiny config: crop modes, the text cache, flip averaging."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine.config import ClipConfig, config_path
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.matching import embedder as clip_module
from ovlabel.engine.matching import label_image
from tests.engine.matching.helpers import B, BIG, IN1, box_mask, config, noise_image, noun, parse

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


@pytest.fixture(scope="module")
def tiny_clip() -> clip_module.OpenClipEmbedder:
    from ovlabel.engine.config import load_config

    cfg = load_config(config_path("tiny.yaml")).clip
    return clip_module.OpenClipEmbedder(cfg, "cpu")


@pytest.mark.parametrize("mode", ["masked", "box", "blend"])
def test_crop_modes_run_through_open_clip(tiny_clip: clip_module.OpenClipEmbedder, mode: str) -> None:
    image = noise_image(3)
    masks = MaskBatch.from_masks(np.stack([box_mask(BIG), box_mask(IN1), box_mask(B)]))
    parses = [parse(noun("field", level="scene"), noun("dog", plural=True), noun("ear", level="part", parent=1))]
    cfg = config(similarity_threshold=-1.0, probability_threshold=0.0, part_containment=0.8)
    tree = label_image(tiny_clip, cfg, image, masks, parses, mode)
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
    flipping = clip_module.OpenClipEmbedder(tiny_clip.cfg.model_copy(update={"flip_average": True}), "cpu")
    both = flipping.embed_crops(crops)
    np.testing.assert_allclose(both, flipping.embed_crops(mirrored), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(flipping.embed_crops(crops[:1]), both[:1], atol=1e-6)  # batch-invariant
