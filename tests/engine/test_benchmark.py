"""The reference path of ovlabel bench: one encoder call per crop, labels encoded per image, same rules."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine.benchmark import PerCropEmbedder, same_segments
from ovlabel.engine.matching import embedder as clip_module
from ovlabel.engine.shipped import config_path
from tests.engine.matching.helpers import noise_image


@pytest.fixture(scope="module")
def per_crop() -> PerCropEmbedder:
    from ovlabel.pipelines.options import load_run_config

    cfg = load_run_config(config_path("tiny.yaml")).clip
    model, tokenizer, sha = clip_module.build_clip_model(cfg, "cpu")
    return PerCropEmbedder(model, tokenizer, cfg.model_copy(update={"crops_per_batch": 1}), "cpu", sha)


def test_every_crop_is_its_own_encoder_call(per_crop: PerCropEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    encode = per_crop.model.encode_image
    monkeypatch.setattr(per_crop.model, "encode_image", lambda x: sizes.append(len(x)) or encode(x))
    crops = np.stack([noise_image(k, (64, 64)) for k in range(3)])
    out = per_crop.embed_crops(crops)
    assert sizes == [1, 1, 1] and out.shape[0] == 3 and per_crop.work.padding == 0
    assert per_crop.embed_crops(crops[:0]).shape[0] == 0


def test_labels_are_encoded_again_after_forget(per_crop: PerCropEmbedder) -> None:
    per_crop.embed_labels(["dog", "cat"])
    assert set(per_crop._text_cache) == {"dog", "cat"}
    per_crop.forget_labels()
    assert not per_crop._text_cache


def _seg(i: int, label: str, counts: str = "x") -> dict:
    return {"segment_id": i, "parent_id": None if i == 0 else 0, "level": "scene" if i == 0 else "object",
            "label": label, "source": "caption", "mask": {"size": [2, 2], "counts": counts}, "score": 0.5}


def test_same_segments_compares_tree_labels_and_masks_not_scores() -> None:
    ours = {"a": [_seg(0, "room"), _seg(1, "dog")], "b": [_seg(0, "street")]}
    ref = {"a": [_seg(0, "room"), {**_seg(1, "dog"), "score": 0.51}], "b": [_seg(0, "street"), _seg(1, "car")]}
    assert same_segments(ours, ref) == (3, 4)  # b's car is only in the reference
    assert same_segments(ours, {"a": [_seg(0, "room"), _seg(1, "dog", "y")]}) == (1, 3)
