"""scripts/train_demo_clip.py: its training samples do not depend on how many processes make them; the
matcher loss's soft targets rank a well-fitting proposal above a loose one."""
from __future__ import annotations

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
