"""Config sections: frozen, no unknown keys, and one readable line for the first validation error."""
from __future__ import annotations

from typing import Optional

import pytest
from pydantic import Field, ValidationError, model_validator

from ovlabel.engine.sections import NESTED_ERROR, Section, describe_error, nested_error


class Inner(Section):
    size: int = Field(1, ge=1)


class Outer(Section):
    name: str = "x"
    inner: Inner = Inner()


class ByHand(Section):
    """A section that validates its ``extra`` settings itself, as the masks section does with its generators'."""

    kind: str = "inner"
    extra: Optional[dict[str, object]] = None

    @model_validator(mode="after")
    def _check(self) -> "ByHand":
        try:
            Inner.model_validate(self.extra or {})
        except ValidationError as err:
            raise nested_error(self.kind, err) from None
        return self


def _error(model: type[Section], data: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value


def test_sections_are_frozen_and_forbid_unknown_keys() -> None:
    section = Outer()
    with pytest.raises(ValidationError):
        section.name = "y"  # type: ignore[misc]
    assert _error(Outer, {"nmae": "y"}).errors()[0]["type"] == "extra_forbidden"


def test_an_unknown_key_is_named_with_its_full_path() -> None:
    message = describe_error(_error(Outer, {"inner": {"sise": 2}}), "run.yaml")
    assert message == ("unknown config key 'inner.sise' in run.yaml; "
                       "check the spelling against configs/default.yaml")


def test_a_bad_value_names_its_key_and_what_is_wrong() -> None:
    message = describe_error(_error(Outer, {"inner": {"size": 0}}), "overrides")
    assert message == "bad config value for 'inner.size' in overrides: Input should be greater than or equal to 1"


def test_only_the_first_error_is_described() -> None:
    err = _error(Outer, {"name": 3, "inner": {"size": 0}})
    assert len(err.errors()) == 2 and describe_error(err, "f").startswith("bad config value for 'name' in f:")


def test_a_nested_error_keeps_the_key_inside_the_section_validated_by_hand() -> None:
    err = _error(ByHand, {"kind": "grid", "extra": {"size": 0}})
    first = err.errors()[0]
    assert first["type"] == NESTED_ERROR and first["ctx"]["loc"] == "grid.size"
    assert describe_error(err, "f") == "bad config value for 'grid.size' in f: Input should be greater than or equal to 1"
    unknown = _error(ByHand, {"kind": "grid", "extra": {"rows": 2}})
    assert describe_error(unknown, "f").startswith("unknown config key 'grid.rows' in f;")


def test_nested_error_is_the_first_error_of_the_section() -> None:
    err = _error(Inner, {"size": 0, "other": 1})
    wrapped = nested_error("masks.grid", err)
    assert wrapped.type == NESTED_ERROR
    assert wrapped.context == {"loc": "masks.grid.size", "type": "greater_than_equal",
                               "msg": "Input should be greater than or equal to 1"}
