"""Files shipped with ovlabel (configs, vocabularies, model architectures, the demo CLIP): one rule to find them.

They live in the ``ovlabel.configs`` package (the ``configs/`` folder), found through
:mod:`importlib.resources`. A location a user gives (a checkpoint, a part lexicon, a model
architecture) is a path as given; a relative one that does not exist from the working directory
is looked up in the configs folder (or the subfolder of its kind of file, e.g. ``models/``), so
shipped configs can name shipped files (``models/ovlabel-tiny-clip.safetensors``, ``vocab/demo_parts.yaml``).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

CONFIG_DIR = Path(str(resources.files("ovlabel.configs")))


def shipped(*parts: str) -> Path:
    """A shipped file, e.g. ``shipped('models', 'sam.yaml')``."""
    return CONFIG_DIR.joinpath(*parts)


def config_path(name: str) -> Path:
    """A config shipped with ovlabel, e.g. ``config_path('demo.yaml')``."""
    return shipped(name)


def shipped_path(location: str | Path, folder: str = "") -> Path:
    """``location`` as a local path: as given, or (relative and not found) the shipped file of that name,
    in the configs folder or its ``folder`` (``shipped_path('tiny.json', 'models')``)."""
    path = Path(location).expanduser()
    fallback = shipped(folder, str(path)) if folder else shipped(str(path))
    if not path.is_absolute() and not path.is_file() and fallback.is_file():
        return fallback
    return path
