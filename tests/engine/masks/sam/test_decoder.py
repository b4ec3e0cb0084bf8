"""SharedImageDecoder against segment-anything's MaskDecoder."""
from __future__ import annotations

import numpy as np
import torch

from ovlabel.engine.masks.sam import SamBatchedGenerator, SamReferenceGenerator
from ovlabel.engine.masks.sam.decoder import SharedImageDecoder


def test_decoder_matches_segment_anything(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    model = pair[0].model
    rng = np.random.default_rng(0)
    with torch.inference_mode():
        embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))
        coords = torch.as_tensor(rng.uniform(0, 1024, (5, 1, 2)))
        sparse, dense = model.prompt_encoder(points=(coords, torch.ones(5, 1, dtype=torch.int)), boxes=None, masks=None)
        logits, iou = model.mask_decoder(image_embeddings=embedding, image_pe=model.prompt_encoder.get_dense_pe(),
                                         sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                         multimask_output=True)
        dec = SharedImageDecoder(model)
        queries, keys = dec.transformer(dec.image_side(embedding), dec.tokens(sparse))
        torch.testing.assert_close(dec.iou(queries), iou, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(dec.masks(queries, keys, chunk=2), logits, atol=1e-4, rtol=1e-4)


def test_decode_filters_by_predicted_iou(pair: tuple[SamReferenceGenerator, SamBatchedGenerator]) -> None:
    model = pair[0].model
    with torch.inference_mode():
        embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))
        coords = torch.as_tensor(np.random.default_rng(1).uniform(0, 1024, (6, 2)))
        dec = SharedImageDecoder(model)
        side = dec.image_side(embedding)
        logits, iou, keep, alive = dec.decode(side, coords, 0.0, chunk=4)
        assert keep.all() and alive.tolist() == list(range(6)) and logits.shape == (6, 3, 256, 256)
        threshold = float(iou.median())
        logits, iou, keep, alive = dec.decode(side, coords, threshold, chunk=4)
        assert torch.equal(keep, iou > threshold)
        assert alive.tolist() == keep.any(dim=1).nonzero()[:, 0].tolist() and len(logits) == len(alive)
        logits, _, keep, alive = dec.decode(side, coords, 2.0, chunk=4)
        assert not keep.any() and len(alive) == 0 and logits.shape == (0, 3, 256, 256)
