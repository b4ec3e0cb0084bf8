"""The batched image encoder against segment-anything's ImageEncoderViT."""
from __future__ import annotations

import torch

from ovlabel.engine.masks.sam import SamBatchedGenerator, SamReferenceGenerator
from ovlabel.engine.masks.sam.encoder import encode_images, preprocess
from tests.engine.masks.sam.helpers import SCENES


def test_encoder_matches_segment_anything(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    ref, ours = pair
    with torch.inference_mode():
        batch = torch.cat([preprocess(ours.model, ours.transform, image, ours.device) for image in SCENES[:2]])
        expected = ref.model.image_encoder(batch)
        # The exact path does segment-anything's arithmetic (bit-identical on our CPU), chunked over heads.
        torch.testing.assert_close(encode_images(ref.model, batch, sdpa=False), expected, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(encode_images(ref.model, batch, sdpa=True), expected, atol=1e-4, rtol=1e-4)


def test_preprocess_matches_sam_predictor(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    from segment_anything import SamPredictor

    ref, ours = pair
    predictor = SamPredictor(ref.model)
    with torch.inference_mode():
        resized = torch.as_tensor(predictor.transform.apply_image(SCENES[1])).permute(2, 0, 1).contiguous()[None]
        expected = ref.model.preprocess(resized)
        got = preprocess(ours.model, ours.transform, SCENES[1], ours.device)
    assert got.shape == (1, 3, 1024, 1024)
    assert torch.equal(got, expected)
