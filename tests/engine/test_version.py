"""One version: pyproject.toml's, the package metadata's and ovlabel.engine.__version__ agree."""
from __future__ import annotations

import tomllib
from pathlib import Path

import ovlabel.engine
from ovlabel.engine import installed_version

ROOT = Path(__file__).resolve().parents[2]


def test_the_source_tree_and_pyproject_name_one_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == ovlabel.engine.__version__


def test_the_installed_version_is_the_metadatas_or_the_source_trees(monkeypatch) -> None:
    from importlib import metadata

    assert installed_version() in (ovlabel.engine.__version__, metadata.version("ovlabel"))

    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert installed_version() == ovlabel.engine.__version__
