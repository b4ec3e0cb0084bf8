"""scripts/train_demo_clip.py: its training samples do not depend on how many processes make them; the
matcher loss's soft targets rank a well-fitting proposal above a loose one; the mask-input crop modes train
and serve alike."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np
import pytest

pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def train(load_script: Callable[[str], ModuleType]) -> ModuleType:
    return load_script("train_demo_clip")


def test_samples_are_the_same_whatever_the_worker_count(train: ModuleType) -> None:
    from ovlabel.engine.shipped import config_path
    from ovlabel.pipelines.options import load_run_config

    cfg = load_run_config(config_path("demo.yaml"))
    vocab = train.Vocabulary.build(cfg.matching.background_labels)
    spec = train.data_spec(cfg, (0, 4), (1, 2), 32)  # scene 1 with proposals too
    one = train.make_samples(spec, vocab, workers=1, chunk=4)
    two = train.make_samples(spec, vocab, workers=2, chunk=1)
    assert (one.source == 1).any() and (one.source == 0).any() and (one.source == 2).sum() == 4
    for field in train.Samples.FIELDS:
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    assert (one.quality[one.source != 1] == 1.0).all()
    proposals = one.quality[one.source == 1]
    labelled = ~one.labels[one.source == 1][:, vocab.background]
    assert (proposals[labelled] >= train.POSITIVE_IOU).all() and (proposals[~labelled] < train.NEGATIVE_IOU).all()


def test_own_target_rises_with_the_fit(train: ModuleType) -> None:
    quality = np.array([0.2, 0.5, 0.675, 0.85, 1.0])
    np.testing.assert_allclose(train.own_target(quality, 0.5), [0.5, 0.5, 0.75, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(train.own_target(quality, 1.0), 1.0)


def _targets(train: ModuleType, weight: float) -> object:
    # one region, words [own, other, background, background]
    return train.MatcherTargets(offered=np.array([[True, True, True, True]]), own=np.array([[True, False, False, False]]),
                                background=np.array([[False, False, True, True]]),
                                weight=np.array([weight], np.float32))


@pytest.mark.parametrize("weight", [0.0, 0.6, 1.0])
def test_matcher_loss_is_cross_entropy_to_the_soft_target(train: ModuleType, weight: float) -> None:
    import torch

    logits = torch.tensor([[1.0, 0.5, -0.3, 0.2]], requires_grad=True)
    p = torch.softmax(logits.detach(), dim=1)[0]
    expected = -(weight * torch.log(p[0]) + (1 - weight) * torch.log(p[2] + p[3]))
    loss = train.matcher_loss(logits, _targets(train, weight))
    assert abs(loss.item() - expected.item()) < 1e-5
    # minimal where the own word has the target probability and the rest sits on the background labels
    at_target = torch.log(torch.tensor([[max(weight, 1e-6), 1e-6, (1 - weight) / 2 + 1e-6, (1 - weight) / 2 + 1e-6]]))
    at_target.requires_grad_(True)
    train.matcher_loss(at_target, _targets(train, weight)).backward()
    assert at_target.grad is not None and at_target.grad.abs().max().item() < 1e-4
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().max().item() > 1e-2


@pytest.mark.parametrize("mode", ["alpha", "mask_prompt"])
def test_a_mask_input_crop_mode_trains_and_serves_as_it_trained(train: ModuleType, tmp_path: Path, mode: str) -> None:
    """The --crop-mode prototype: samples keep their masks, a few steps train the region parameters, and the
    saved checkpoint gives the engine's region embedder the embeddings the training forward gives."""
    import torch

    from ovlabel.engine.config import ClipConfig
    from ovlabel.engine.matching import build_region_embedder
    from ovlabel.engine.shipped import config_path
    from ovlabel.pipelines.options import load_run_config

    torch.use_deterministic_algorithms(False)  # as the other tests run; main() turns it on
    cfg = load_run_config(config_path("demo.yaml"), [f"matching.crop_mode={mode}"])
    vocab = train.Vocabulary.build(cfg.matching.background_labels)
    model, tokenizer = train.build_model(cfg, 0)
    samples = train.make_samples(train.data_spec(cfg, (0, 3), (1, 2), 64), vocab, workers=1, chunk=3)
    assert samples.masks.shape == samples.crops.shape[:3]
    assert samples.masks[samples.source == 2].min() == 255 and samples.masks[samples.source == 0].min() == 0  # square scenes
    tokens = train.prompt_tokens(tokenizer, vocab.words, cfg.clip.templates)
    spec = train.TrainSpec(3, 1, 8, 2e-3, 0.05, 1, 1.0, 0.03, 0.5, 0.6, 1.0, 0, crop_mode=mode)
    extra = model.visual.conv1_alpha.weight if mode == "alpha" else model.visual.mask_embedding
    before = extra.detach().clone()
    train.train(model, samples, samples, vocab, tokens, spec)
    assert not torch.equal(extra.detach(), before)  # the region parameters learn with the rest
    path = tmp_path / "tiny-region.safetensors"
    train.save_checkpoint(model, tokens, path, {"trained_by": "test"})
    served = build_region_embedder(ClipConfig(model="ovlabel-tiny-clip", pretrained=None, checkpoint=str(path)), mode)
    crops, masks = samples.crops[:8], samples.masks[:8]
    model.eval()
    with torch.no_grad():
        trained = train.encode_images(model, crops, masks, mode).numpy()
    assert (served.embed_regions(crops, masks) * trained).sum(axis=1).min() > 0.999  # float16 checkpoint
