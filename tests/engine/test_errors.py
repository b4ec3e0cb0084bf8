"""One error hierarchy: every error ovlabel raises on purpose is an OvlabelError (the CLI's exit-2 contract)."""
from __future__ import annotations

import inspect

import pytest

from ovlabel.engine import errors
from ovlabel.engine.errors import (CaptionError, ConfigError, ImageLoadError, InputError, LabelsError, ManifestError,
                                   ModelWeightsError, OutputError, OvlabelError, RunnerError)
from ovlabel.engine.evaluation import EvaluationError

ERRORS = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if cls.__module__ == errors.__name__]


def test_every_error_of_the_module_is_listed_here() -> None:
    assert set(ERRORS) == {OvlabelError, ConfigError, ManifestError, InputError, ImageLoadError, CaptionError,
                           ModelWeightsError, OutputError, LabelsError, RunnerError}


@pytest.mark.parametrize("cls", [*ERRORS, EvaluationError], ids=lambda cls: cls.__name__)
def test_every_error_is_an_ovlabel_error_with_a_docstring(cls: type[Exception]) -> None:
    assert issubclass(cls, OvlabelError) and issubclass(cls, Exception)
    assert cls.__doc__ and cls.__doc__.strip()
    with pytest.raises(OvlabelError, match="what to do"):
        raise cls("what went wrong; what to do")


def test_per_row_errors_are_input_errors() -> None:
    """Errors of one row become error rows (the run goes on); the others stop the run."""
    assert issubclass(ImageLoadError, InputError) and issubclass(CaptionError, InputError)
    for cls in (ConfigError, ManifestError, ModelWeightsError, OutputError):
        assert not issubclass(cls, InputError), cls
    assert OvlabelError.__bases__ == (Exception,)
