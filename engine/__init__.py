"""ovlabel.engine: framework-free logic and model code (never imports apache_beam)."""
from __future__ import annotations

__version__ = "0.1.0"  # pyproject.toml's [project] version says the same (tests/engine/test_version.py)


def installed_version() -> str:
    """The installed distribution's version (its package metadata), else this source tree's :data:`__version__`."""
    from importlib import metadata

    try:
        return metadata.version("ovlabel")
    except metadata.PackageNotFoundError:
        return __version__
