"""Mask geometry: dilation and widened boxes."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine.matching import dilate, widened_box
from tests.engine.matching.helpers import SIZE, box_mask

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def test_dilate_and_widened_box() -> None:
    mask = box_mask((10, 10, 20, 30))
    assert dilate(mask, 2).sum() == 14 * 24 and dilate(mask, 0).sum() == mask.sum()
    assert np.array_equal(widened_box(mask, 0.5), box_mask((5, 0, 25, 40)))
    assert np.array_equal(widened_box(box_mask((0, 0, 4, 4)), 1.0), box_mask((0, 0, 8, 8)))
    assert not widened_box(np.zeros(SIZE, bool), 1.0).any()
