"""spaCy model loading and finding: one error for a missing model."""
from __future__ import annotations

import pytest

from ovlabel.engine.captions import load_spacy
from ovlabel.engine.errors import ConfigError


def test_missing_spacy_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not_a_spacy_model"):
        load_spacy("not_a_spacy_model")

