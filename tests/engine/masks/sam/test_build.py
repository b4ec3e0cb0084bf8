"""SamConfig -> generator: the registry's SAM entry point."""
from __future__ import annotations

from ovlabel.engine.masks import MasksConfig
from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.masks import build_mask_generator
from ovlabel.engine.masks.sam import SamBatchedGenerator, SamReferenceGenerator, amg_kwargs
from tests.engine.masks.sam.helpers import LOW_THRESHOLDS


def test_registry_builds_batched_generator() -> None:
    gen = build_mask_generator(MasksConfig(generator="sam", sam=SamConfig(**LOW_THRESHOLDS)))
    assert isinstance(gen, SamBatchedGenerator)
    info = gen.describe()
    assert info["generator"] == "sam-batched" and info["model_type"] == "vit_tiny"
    assert info["checkpoint_sha256"] is None and info["precision"] == "fp32" and info["attention"] == "exact"
    assert info["pred_iou_thresh"] == 0.01 and info["encoder_batch_size"] == 2


def test_registry_builds_reference_generator() -> None:
    cfg = SamConfig(**LOW_THRESHOLDS, implementation="reference")
    gen = build_mask_generator(MasksConfig(generator="sam", sam=cfg))
    assert isinstance(gen, SamReferenceGenerator)
    assert gen.describe() == {"generator": "sam-reference", "model_type": "vit_tiny", "checkpoint_sha256": None,
                              **amg_kwargs(cfg)}
    assert list(amg_kwargs(cfg))[:2] == ["points_per_side", "points_per_batch"]
    assert len(amg_kwargs(cfg)) == 11 and amg_kwargs(cfg)["min_mask_region_area"] == 0


def test_the_config_carries_every_setting_segment_anything_takes() -> None:
    """AmgSettings is read from segment-anything's signature: a keyword it adds must reach masks.sam too."""
    import dataclasses

    from ovlabel.engine.masks.sam.settings import AmgSettings

    assert {f.name for f in dataclasses.fields(AmgSettings)} <= set(SamConfig.model_fields)
