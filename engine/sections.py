"""The base of every config section, and the validation error wording they share.

A section is a frozen pydantic model that forbids unknown keys, so a typo is an error naming
the key. The root models (:class:`ovlabel.engine.config.Config`, and the pipeline's
``RunConfig`` on top of it) are made of sections.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

NESTED_ERROR = "nested_section"  # a section validated by hand (see nested_error) failed inside


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def nested(loc: str, error_type: str, msg: str) -> PydanticCustomError:
    """An error about key ``loc`` below the section being validated, kept whole for :func:`describe_error`."""
    return PydanticCustomError(NESTED_ERROR, "{msg}", {"loc": loc, "type": error_type, "msg": msg})


def nested_error(name: str, err: ValidationError) -> PydanticCustomError:
    """The first error of section ``name``'s own validation, with its full key."""
    first = err.errors()[0]
    return nested(".".join(str(p) for p in (name, *first["loc"])), first["type"], first["msg"])


def describe_error(err: ValidationError, origin: str) -> str:
    """One line for the first error: the key it is about and what to do."""
    first: dict[str, Any] = dict(err.errors()[0])
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == NESTED_ERROR:
        ctx = first["ctx"]
        loc = ".".join(p for p in (loc, ctx["loc"]) if p)
        first.update(type=ctx["type"], msg=ctx["msg"])
    if first["type"] == "extra_forbidden":
        return f"unknown config key {loc!r} in {origin}; check the spelling against configs/default.yaml"
    return f"bad config value for {loc!r} in {origin}: {first['msg']}"
