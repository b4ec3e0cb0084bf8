"""The base of every config section, and the validation error wording they share.

A section is a frozen pydantic model that forbids unknown keys, so a typo is an error naming
the key. The root models (:class:`ovlabel.engine.config.Config`, and the pipeline's
``RunConfig`` on top of it) are made of sections.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

NESTED_ERROR = "nested_section"  # a section validated by hand (see nested_error) failed inside
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _device(value: str) -> str:
    if not DEVICE_PATTERN.fullmatch(value):
        raise ValueError(f"{value!r} is not a device: use auto, cpu, cuda, cuda:N or mps")
    return value


# the value types config sections share; each refuses what a run could not use, when the config is read
NonEmptyStr = Annotated[str, AfterValidator(_not_blank)]
Cosine = Annotated[float, Field(ge=-1, le=1)]  # a cosine similarity
Fraction = Annotated[float, Field(ge=0, le=1)]  # a probability, or a fraction of an image or a box
Device = Annotated[str, AfterValidator(_device)]  # a torch device, or 'auto': CUDA when there is one
# a model's arithmetic: 'auto' is bf16 autocast on CUDA and fp32 elsewhere; 'bf16' also on CPUs (faster where the
# CPU has bf16 instructions, e.g. avx512_bf16; labels may differ from fp32's in a few segments)
Precision = Literal["auto", "fp32", "bf16"]


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
