"""scripts/train_demo_clip.py: its training samples do not depend on how many processes make them."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("open_clip")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_demo_clip.py"


@pytest.fixture(scope="module")
def train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_demo_clip", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the worker processes unpickle its functions by module name
    spec.loader.exec_module(module)
    return module


def test_samples_are_the_same_whatever_the_worker_count(train: ModuleType) -> None:
    from ovlabel.engine.config import config_path, load_config

    cfg = load_config(config_path("demo.yaml"))
    vocab = train.Vocabulary.build(cfg.matching.background_labels)
    spec = train.data_spec(cfg, (0, 4), (1, 2), 32)  # scene 1 with proposals too
    one = train.make_samples(spec, vocab, workers=1, chunk=4)
    two = train.make_samples(spec, vocab, workers=2, chunk=1)
    assert (one.source == 1).any() and (one.source == 0).any() and (one.source == 2).sum() == 4
    for field in ("crops", "labels", "source", "context"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
