"""The ``masks`` config section: which generator, on which device, and each registered generator's settings.

Every generator in :data:`~ovlabel.engine.masks.registry.MASK_GENERATORS` has its settings
section ``masks.<name>`` (defaults when absent), validated by its own settings model; any other
key is an error that names it.
"""
from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, ValidationError, field_validator, model_validator

from ovlabel.engine.errors import ConfigError
from ovlabel.engine.masks.registry import MASK_GENERATORS, GeneratorSpec, generator_spec, unknown_generator
from ovlabel.engine.sections import Device, Section, nested, nested_error


def _section(spec: GeneratorSpec, value: Any) -> Section:
    if isinstance(value, spec.settings):
        return value
    try:
        return spec.settings.model_validate({} if value is None else value)
    except ValidationError as err:
        raise nested_error(spec.name, err) from None


class MasksConfig(Section):
    """``generator`` names a registered generator; ``settings`` is its section."""

    model_config = ConfigDict(extra="allow", frozen=True)  # extras: the generators' sections, validated below

    generator: str = "sam"
    device: Device = "auto"

    @field_validator("generator")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in MASK_GENERATORS:
            raise ValueError(unknown_generator(name))
        return name

    @model_validator(mode="before")
    @classmethod
    def _generator_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in data:
            if key not in cls.model_fields and key not in MASK_GENERATORS:
                raise nested(str(key), "extra_forbidden", "Extra inputs are not permitted")
        for name, spec in MASK_GENERATORS.items():
            data[name] = _section(spec, data.get(name))
        return data

    @property
    def spec(self) -> GeneratorSpec:
        """The registry entry of ``generator``."""
        return generator_spec(self.generator)

    @property
    def settings(self) -> Any:
        """The chosen generator's settings section (``masks.<generator>``)."""
        return self.section(self.generator)

    def section(self, name: str) -> Any:
        extra = self.__pydantic_extra__ or {}
        if name not in extra:
            raise ConfigError(unknown_generator(name))
        return extra[name]
