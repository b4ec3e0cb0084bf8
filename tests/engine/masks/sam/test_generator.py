"""SamBatchedGenerator against segment-anything's own SamAutomaticMaskGenerator (see helpers.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.masks.sam import (
    SamBatchedGenerator,
    SamReferenceGenerator,
    amg_kwargs,
    batched_generator,
    make_random_sam_coherent,
    reference_generator,
)
from tests.engine.masks.sam.helpers import CROP_SCENE, LOW_THRESHOLDS, SCENES, assert_same_masks, make_pair, match


def test_matches_segment_anything(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    ref, ours = pair
    expected = ref.generate(SCENES)
    got = ours.generate(SCENES)  # encoder_batch_size=2: two encoder batches
    assert [len(b) for b in expected] == [len(b) for b in got]
    assert sum(len(b) for b in expected) >= 6 and min(len(b) for b in expected) >= 2
    for e, g in zip(expected, got):
        assert_same_masks(e, g)
        assert g.source == e.source


def test_crop_layers_match_segment_anything() -> None:
    cfg = SamConfig(**{**LOW_THRESHOLDS, "crop_n_layers": 1, "points_per_side": 2, "stability_score_thresh": 0.01,
                       "encoder_batch_size": 3})  # 5 encoder inputs: batches of 3 and 2
    ref, ours = make_pair(cfg)
    [expected], [got] = ref.generate([CROP_SCENE]), ours.generate([CROP_SCENE])
    whole = np.all(expected.crop_boxes == [0, 0, 256, 192], axis=1)
    assert whole.any() and (~whole).any(), "want masks from the whole image and from crops"
    assert_same_masks(expected, got)


def test_min_mask_region_area_cleans_output(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    from scipy import ndimage

    cfg = SamConfig(**{**LOW_THRESHOLDS, "min_mask_region_area": 40, "points_per_side": 2})
    [batch] = batched_generator(cfg, model=pair[0].model).generate([SCENES[0]])
    assert len(batch)
    for mask in batch.decode_all():
        _, sizes = np.unique(ndimage.label(mask, structure=np.ones((3, 3)))[0][mask], return_counts=True)
        assert sizes.min() >= 40 or len(sizes) == 1


def test_nothing_passes_gives_empty_batches(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    cfg = SamConfig(**{**LOW_THRESHOLDS, "pred_iou_thresh": 0.99, "points_per_side": 2})
    batches = batched_generator(cfg, model=pair[0].model).generate(SCENES[:2], ["a", "b"])
    assert [len(b) for b in batches] == [0, 0]
    assert [b.image_size for b in batches] == [(240, 320), (300, 200)]


def test_plain_keyword_arguments_match_the_config_builder(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]
                                                          ) -> None:
    cfg = SamConfig(**{**LOW_THRESHOLDS, "points_per_side": 2})
    model = pair[0].model
    direct = SamBatchedGenerator(model, model_type="vit_tiny", points_per_side=2, points_per_batch=5,
                                 pred_iou_thresh=0.01, stability_score_thresh=0.05, box_nms_thresh=0.95,
                                 crop_nms_thresh=cfg.crop_nms_thresh, crop_overlap_ratio=cfg.crop_overlap_ratio,
                                 encoder_batch_size=2)
    built = batched_generator(cfg, model=model)
    assert direct.describe() == built.describe()
    [a], [b] = direct.generate(SCENES[:1]), built.generate(SCENES[:1])
    assert a.rles == b.rles and np.array_equal(a.predicted_iou, b.predicted_iou)
    with pytest.raises(TypeError, match="points_per_sides"):
        SamBatchedGenerator(model, model_type="vit_tiny", points_per_sides=2)
    assert list(amg_kwargs(cfg)) == list(direct.settings.as_kwargs())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_agrees_with_fp32() -> None:
    cfg = SamConfig(**{**LOW_THRESHOLDS, "points_per_side": 8, "points_per_batch": 64})
    ref = reference_generator(cfg, "cuda")
    make_random_sam_coherent(ref.model)
    fp32 = batched_generator(cfg, "cuda", model=ref.model, autocast=False, sdpa=False)
    bf16 = batched_generator(cfg, "cuda", model=ref.model)
    assert bf16.describe()["precision"] == "bf16-autocast"
    expected, exact, fast = ref.generate(SCENES), fp32.generate(SCENES), bf16.generate(SCENES)
    for e, x in zip(expected, exact):
        assert_same_masks(e, x)
    matched, total, ious = 0, 0, []
    for x, f in zip(exact, fast):
        total += len(x)
        if len(x) and len(f):
            _, _, iou = match(x, f)
            matched += int((iou >= 0.9).sum())
            ious += iou.tolist()
    assert total and matched >= 0.8 * total
    assert np.mean(ious) >= 0.9
    assert abs(sum(len(f) for f in fast) - total) <= 0.2 * total


def test_cpu_bf16_casts_the_image_encoder_and_agrees_with_fp32(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]
                                                               ) -> None:
    import copy

    cfg = SamConfig(**{**LOW_THRESHOLDS, "points_per_side": 4, "precision": "bf16"})
    model = copy.deepcopy(pair[0].model)
    make_random_sam_coherent(model)
    fp32 = batched_generator(cfg.model_copy(update={"precision": "fp32"}), model=copy.deepcopy(model))
    bf16 = batched_generator(cfg, model=model)
    assert bf16.describe()["precision"] == "bf16-encoder-weights" and fp32.describe()["precision"] == "fp32"
    assert model.image_encoder.patch_embed.proj.weight.dtype == torch.bfloat16
    assert model.mask_decoder.iou_prediction_head.layers[0].weight.dtype == torch.float32
    exact, fast = fp32.generate(SCENES), bf16.generate(SCENES)
    total = sum(len(x) for x in exact)
    matched = sum(int((match(x, f)[2] >= 0.9).sum()) for x, f in zip(exact, fast) if len(x) and len(f))
    assert total and matched >= 0.8 * total
