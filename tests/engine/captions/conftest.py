"""Caption tests share one parser (spaCy is loaded once for the whole folder)."""
from __future__ import annotations

import pytest

from ovlabel.engine.captions import CaptionParser


@pytest.fixture(scope="session")
def parser() -> CaptionParser:
    return CaptionParser()
