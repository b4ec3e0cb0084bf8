"""ModelHandlers: pickled without models, batch failures isolated to the bad image."""
from __future__ import annotations

import pickle
from typing import Sequence

import numpy as np
import pytest

from ovlabel.engine.config import ClipConfig, MatchingConfig
from ovlabel.engine.masks import MasksConfig
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.records import ErrorRecord, ImageBundle, InputRecord
from ovlabel.pipelines.handlers import MaskModelHandler, MatchModelHandler
from ovlabel.pipelines.options import StageOptions
from ovlabel.pipelines.stages import GENERATE_MASKS, MATCH_REGIONS


def _bundle(i: int, shape: tuple[int, ...] = (8, 8, 3)) -> ImageBundle:
    return ImageBundle(record=InputRecord(f"id{i}", f"/x/{i}.png", ("a dog",), "{}"), image=np.zeros(shape, np.uint8))


class _Picky:
    """A MaskGenerator that fails any batch holding a 2-channel image."""

    name = "picky"

    def generate(self, images: Sequence[np.ndarray], image_ids: Sequence[str]) -> list[MaskBatch]:
        if any(im.shape[-1] != 3 for im in images):
            raise ValueError("expected (H, W, 3) images")
        return [MaskBatch.empty(im.shape[:2]) for im in images]

    def describe(self) -> dict[str, object]:
        return {}


def test_handlers_pickle_small_and_load_nothing_in_init() -> None:
    handler = MaskModelHandler(GENERATE_MASKS, MasksConfig(generator="sam"), StageOptions())
    assert len(pickle.dumps(handler)) < 20_000
    assert len(pickle.dumps(MatchModelHandler(MATCH_REGIONS, ClipConfig(), MatchingConfig(), StageOptions()))) < 20_000


def test_a_bad_image_fails_alone() -> None:
    batch = [_bundle(0), _bundle(1, (8, 8, 2)), _bundle(2)]
    handler = MaskModelHandler(GENERATE_MASKS, MasksConfig(generator="superpixel"), StageOptions())
    results = list(handler.run_inference(batch, _Picky()))
    assert [type(r).__name__ for r in results] == ["ImageBundle", "ErrorRecord", "ImageBundle"]
    error = results[1]
    assert isinstance(error, ErrorRecord) and error.stage == "GenerateMasks" and "expected (H, W, 3)" in error.message
    assert all(r.masks is not None for r in results if isinstance(r, ImageBundle))


def test_batching_and_sizing() -> None:
    options = StageOptions(images_per_batch=3, accelerator="type:nvidia-l4;count:1")
    handler = MaskModelHandler(GENERATE_MASKS, MasksConfig(generator="sam"), options)
    assert handler.batch_elements_kwargs()["max_batch_size"] == 3
    assert handler.get_num_bytes([_bundle(0), _bundle(1)]) == 2 * 8 * 8 * 3
    assert handler.share_model_across_processes()
    superpixel = MaskModelHandler(GENERATE_MASKS, MasksConfig(generator="superpixel", device="cpu"), options)
    assert not superpixel.share_model_across_processes()  # the registry says superpixel wants no accelerator


def test_the_matching_handler_builds_the_embedder_its_crop_mode_needs() -> None:
    from ovlabel.engine.matching import OpenClipMaskInputEmbedder

    clip = ClipConfig(model="ovlabel-tiny-clip", pretrained=None, checkpoint="random", device="cpu")
    matcher = MatchModelHandler(MATCH_REGIONS, clip, MatchingConfig(crop_mode="mask_prompt"), StageOptions()).load_model()
    assert isinstance(matcher.embedder, OpenClipMaskInputEmbedder) and matcher.embedder.crop_mode == "mask_prompt"
    plain = MatchModelHandler(MATCH_REGIONS, clip, MatchingConfig(crop_mode="masked"), StageOptions()).load_model()
    assert not isinstance(plain.embedder, OpenClipMaskInputEmbedder)


def test_loading_a_model_sets_the_workers_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    from ovlabel.engine import memory

    seen: list[int] = []
    monkeypatch.setattr(memory, "keep_freed_memory", lambda mib: seen.append(mib) or True)
    options = StageOptions(keep_freed_memory_mib=512)
    MaskModelHandler(GENERATE_MASKS, MasksConfig(generator="superpixel", device="cpu"), options).load_model()
    assert seen == [512] and StageOptions().keep_freed_memory_mib == 1024
