"""Caption tests share one parser and one full spaCy pipeline (each loaded once for the whole folder)."""
from __future__ import annotations

from typing import Any

import pytest

from ovlabel.engine.captions import DEFAULT_MODEL, CaptionParser, load_spacy


@pytest.fixture(scope="session")
def parser() -> CaptionParser:
    return CaptionParser()


@pytest.fixture(scope="session")
def nlp() -> Any:
    """The default spaCy pipeline with its own lemmatiser on (for reading docs module by module)."""
    return load_spacy(DEFAULT_MODEL)
