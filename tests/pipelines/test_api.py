"""The Python API's surface: `import ovlabel` is light, `ovlabel.label` and `__version__` load on use.

A whole `ovlabel.label` run on a folder: tests/pipelines/test_folder_inputs.py."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import ovlabel
from ovlabel.engine.errors import ConfigError, OvlabelError
from ovlabel.pipelines.api import LabelResult, _with_limit, label


def test_importing_ovlabel_loads_neither_beam_nor_torch(tmp_path: Path) -> None:
    code = ("import json, sys, ovlabel; heavy = [m for m in ('apache_beam', 'torch', 'open_clip', 'spacy') "
            "if m in sys.modules]; print(json.dumps([heavy, dir(ovlabel), ovlabel.__version__]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    heavy, names, version = json.loads(done.stdout)
    assert heavy == [] and {"label", "LabelResult", "__version__"} <= set(names) and version


def test_the_api_is_reached_from_the_top_level() -> None:
    assert ovlabel.label is label and ovlabel.LabelResult is LabelResult
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ovlabel.nope  # noqa: B018


def test_limit_joins_either_kind_of_overrides() -> None:
    assert _with_limit({"masks.device": "cpu"}, 3) == {"masks.device": "cpu", "input.limit": 3}
    assert _with_limit(["masks.device=cpu"], 3) == ["masks.device=cpu", "input.limit=3"]
    assert _with_limit(None, None) == () and _with_limit({"a": 1}, None) == {"a": 1}


def test_errors_are_raised_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shipped: .*demo, .*tiny"):
        label(tmp_path, tmp_path / "out", config="dmeo")
    with pytest.raises(ConfigError, match="input.limit"):
        label(tmp_path, tmp_path / "out", config="tiny", limit=0)
    with pytest.raises(OvlabelError, match="force_resume goes with resume"):
        label(tmp_path, tmp_path / "out", config="tiny", force_resume=True)
    with pytest.raises(OvlabelError, match="no images in"):
        label(tmp_path, tmp_path / "out", config="tiny", overrides={"masks.device": "cpu"})
    assert not (tmp_path / "out").exists()
