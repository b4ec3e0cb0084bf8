"""One error hierarchy. Every message says what went wrong and what to do next."""
from __future__ import annotations


class OvlabelError(Exception):
    """Base class of every error ovlabel raises on purpose."""


class ConfigError(OvlabelError):
    """The configuration is invalid: fix the YAML file or the key=value override it names."""


class ManifestError(OvlabelError):
    """The manifest (or one of its rows) cannot be read."""


class InputError(OvlabelError):
    """One input row is unusable; it becomes an error row, the run goes on."""


class ImageLoadError(InputError):
    """The image cannot be read or decoded, or breaks a configured limit."""


class CaptionError(InputError):
    """The captions of a row cannot be used (empty, too long, nothing to label)."""


class ModelWeightsError(OvlabelError):
    """Model weights are missing, unreachable or fail verification."""


class OutputError(OvlabelError):
    """The output folder cannot be written as asked (not empty, outside the output root...)."""


class LabelsError(OvlabelError):
    """A run's labels cannot be read back as asked (no shards, a shard of another schema version, an image that is
    gone): the message names the file."""


class RunnerError(OvlabelError):
    """The Beam runner cannot be reached or started: start its job service, or run locally."""
