"""Fixtures of the SAM tests: one torch thread, and a reference/batched pair on one model per module."""
from __future__ import annotations

from typing import Iterator

import pytest
import torch

from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.masks.sam import SamBatchedGenerator, SamReferenceGenerator
from tests.engine.masks.sam.helpers import LOW_THRESHOLDS, make_pair


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """These tensors are small: fanning ops out over threads costs more than it gains on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pair() -> tuple[SamReferenceGenerator, SamBatchedGenerator]:
    return make_pair(SamConfig(**LOW_THRESHOLDS))
