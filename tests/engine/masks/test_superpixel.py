"""SuperpixelGenerator: weights-free selective-search proposals."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine import rle as rle_utils
from ovlabel.engine.masks import MasksConfig
from ovlabel.engine.masks.settings import SuperpixelConfig
from ovlabel.engine.errors import InputError
from ovlabel.engine.masks import build_mask_generator
from ovlabel.engine.masks.base import MaskGenerator
from ovlabel.engine.masks.data import MaskBatch
from ovlabel.engine.masks.superpixel import (SuperpixelGenerator, _DedupeMasks, _ranked_candidates, _select,
                                             _working_image)


def _house(h: int = 120, w: int = 160, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A noisy synthetic scene (sky, grass, house = roof + wall + door), (h, w, 3) uint8, and its part masks."""
    yy, xx = np.mgrid[:h, :w]
    wall = (yy >= 50) & (yy < 100) & (xx >= 50) & (xx < 120)
    roof = (yy >= 20) & (yy < 50) & (np.abs(xx - 85) <= (yy - 20) * 45 / 30)
    door = (yy >= 72) & (yy < 100) & (xx >= 78) & (xx < 92)
    wall &= ~door
    grass = (yy >= 100) & ~wall & ~door
    image = np.empty((h, w, 3), np.float64)
    image[:] = (120, 170, 235)  # sky
    for mask, colour in ((grass, (60, 150, 50)), (wall, (225, 215, 170)), (roof, (170, 40, 35)), (door, (90, 55, 25))):
        image[mask] = colour
    image += np.random.default_rng(seed).normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), {"door": door, "house": wall | roof | door, "roof": roof}


def _best_iou(batch: MaskBatch, mask: np.ndarray) -> float:
    return float(rle_utils.iou_matrix(list(batch.rles), [rle_utils.encode(mask)]).max())


@pytest.fixture(scope="module")
def house_batch() -> MaskBatch:
    image, _ = _house()
    return SuperpixelGenerator(SuperpixelConfig()).generate([image], ["house"])[0]


def test_protocol_and_registry() -> None:
    gen = build_mask_generator(MasksConfig(generator="superpixel"))
    assert isinstance(gen, SuperpixelGenerator) and isinstance(gen, MaskGenerator)
    info = gen.describe()
    assert info["generator"] == "superpixel" and info["max_proposals"] == 300


def test_parts_and_wholes(house_batch: MaskBatch) -> None:
    _, parts = _house()
    for name, mask in parts.items():
        assert _best_iou(house_batch, mask) >= 0.5, name


def test_columns(house_batch: MaskBatch) -> None:
    n = len(house_batch)
    assert 0 < n <= 300 and house_batch.image_size == (120, 160)
    assert house_batch.source == "superpixel"
    assert np.isnan(house_batch.points).all()
    assert (house_batch.areas >= 0.0005 * 120 * 160).all()
    np.testing.assert_array_equal(house_batch.crop_boxes, np.tile([0, 0, 160, 120], (n, 1)))
    ious = rle_utils.iou_matrix(list(house_batch.rles), list(house_batch.rles))
    np.fill_diagonal(ious, 0)
    assert ious.max() <= 0.95  # near-identical proposals were deduplicated (on a working-resolution grid)


def test_deterministic() -> None:
    image, _ = _house(seed=3)
    gen = SuperpixelGenerator(SuperpixelConfig())
    a, b = gen.generate([image, image], ["x", "y"])
    c = SuperpixelGenerator(SuperpixelConfig()).generate([image], ["x"])[0]
    assert a.rles == b.rles == c.rles


@pytest.mark.parametrize("dedupe_iou", [0.5, 0.9])
def test_dedupe_bounds_prune_nothing_that_matters(dedupe_iou: float) -> None:
    """The area and box bounds in _select skip only comparisons that could not exceed dedupe_iou:
    the same proposals as comparing every candidate with every kept one."""
    image, _ = _house(seed=5)
    cfg = SuperpixelConfig(colour_spaces=("lab", "hsv"), similarities=("f", "cs"), max_proposals=200)
    regions, hierarchies = SuperpixelGenerator(cfg)._hierarchies(_working_image(image, cfg.max_side))
    candidates = _ranked_candidates(hierarchies, 1.0, 0)
    grid = _DedupeMasks(regions, hierarchies)
    reference: list[tuple[int, int]] = []
    for s, u in candidates.tolist():
        a = grid.mask(s, u)
        ious = [np.count_nonzero(a & b) / np.count_nonzero(a | b) if (a | b).any() else 1.0
                for b in (grid.mask(*k) for k in reference)]
        if not any(v > dedupe_iou for v in ious):
            reference.append((s, u))
        if len(reference) == cfg.max_proposals:
            break
    assert _select(candidates, hierarchies, grid, cfg.max_proposals, dedupe_iou) == reference


def test_cap_respected() -> None:
    image, _ = _house()
    batch = SuperpixelGenerator(SuperpixelConfig(max_proposals=7)).generate([image], ["x"])[0]
    assert 0 < len(batch) <= 7


def test_masks_upsampled_to_image_size() -> None:
    image, parts = _house(h=240, w=320)
    batch = SuperpixelGenerator(SuperpixelConfig(max_side=96)).generate([image], ["x"])[0]
    assert batch.image_size == (240, 320)
    assert batch.decode(0).shape == (240, 320)
    assert all(r["size"] == [240, 320] for r in batch.rles)
    assert _best_iou(batch, parts["house"]) >= 0.5


def test_grayscale_and_tiny_images() -> None:
    gen = SuperpixelGenerator(SuperpixelConfig())
    image, parts = _house()
    gray = image.mean(axis=2).astype(np.uint8)
    tiny = np.zeros((8, 8, 3), np.uint8)
    tiny[2:6, 2:6] = 255
    flat = np.full((8, 8, 3), 7, np.uint8)
    out = gen.generate([gray, gray[:, :, None], tiny, flat], ["g", "g1", "t", "f"])
    assert out[0].rles == out[1].rles and out[0].image_size == (120, 160)
    assert _best_iou(out[0], parts["house"]) >= 0.5
    assert out[2].image_size == (8, 8) and len(out[2]) >= 1
    assert len(out[3]) == 1 and out[3].areas.tolist() == [64]  # one uniform region: the whole image


def test_bad_shape_is_input_error() -> None:
    with pytest.raises(InputError, match="RGB image"):
        SuperpixelGenerator(SuperpixelConfig()).generate([np.zeros((8, 8, 2), np.uint8)], ["x"])
