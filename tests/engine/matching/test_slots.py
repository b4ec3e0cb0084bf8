"""Noun slots and assignment: synonym groups."""
from __future__ import annotations

import numpy as np
import pytest

from ovlabel.engine.matching import synonym_groups

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def test_synonym_groups_link_close_label_embeddings_transitively() -> None:
    text = np.array([[1.0, 0.0, 0.0], [0.96, 0.28, 0.0], [0.0, 1.0, 0.0], [0.85, 0.527, 0.0], [0.0, 0.0, 1.0]])
    assert synonym_groups(text, None) == [[0], [1], [2], [3], [4]]
    assert synonym_groups(text, 0.95) == [[0, 1, 3], [2], [4]]  # 3 joins through 1 (cos 0.85 to 0)
    assert synonym_groups(text, 0.99) == [[0], [1], [2], [3], [4]]

