"""Files shipped with ovlabel (configs, vocabularies, model architectures, the demo CLIP): one rule to find them.

They live in the ``ovlabel.configs`` package (the ``configs/`` folder), found through
:mod:`importlib.resources`. A location a user gives (a checkpoint, a part lexicon, a model
architecture) is a path as given; a relative one that does not exist from the working directory
is looked up in the configs folder (or the subfolder of its kind of file, e.g. ``models/``), so
shipped configs can name shipped files (``models/ovlabel-tiny-clip.safetensors``, ``vocab/demo_parts.yaml``).
A config is found the same way by its name: ``--config demo``, ``demo.yaml`` or ``configs/demo.yaml``
(:func:`find_config`).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from ovlabel.engine.errors import ConfigError

CONFIG_DIR = Path(str(resources.files("ovlabel.configs")))


def shipped(*parts: str) -> Path:
    """A shipped file, e.g. ``shipped('models', 'sam.yaml')``."""
    return CONFIG_DIR.joinpath(*parts)


def config_path(name: str) -> Path:
    """A config shipped with ovlabel, e.g. ``config_path('demo.yaml')``."""
    return shipped(name)


def shipped_configs() -> list[str]:
    """The names of the configs shipped with ovlabel ('bench', 'default', 'demo', 'tiny')."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def find_config(location: str | Path) -> Path:
    """The config file ``--config`` names: a path that is a file wins; else (relative) the shipped config of that
    name, with or without ``.yaml`` and a leading ``configs/``; raises :class:`ConfigError` naming the choices."""
    path = Path(location).expanduser()
    if path.is_file() or path.is_absolute():
        return path
    name = path.as_posix().removeprefix("configs/")
    for candidate in (shipped(name), shipped(f"{name}.yaml")):
        if candidate.is_file() and candidate.parent == CONFIG_DIR:
            return candidate
    raise ConfigError(f"config file {str(location)!r} not found, and ovlabel ships no config of that name "
                      f"(shipped: {', '.join(shipped_configs())}); pass --config with a YAML file or one of those")


def shipped_path(location: str | Path, folder: str = "") -> Path:
    """``location`` as a local path: as given, or (relative and not found) the shipped file of that name,
    in the configs folder or its ``folder`` (``shipped_path('tiny.json', 'models')``)."""
    path = Path(location).expanduser()
    fallback = shipped(folder, str(path)) if folder else shipped(str(path))
    if not path.is_absolute() and not path.is_file() and fallback.is_file():
        return fallback
    return path
