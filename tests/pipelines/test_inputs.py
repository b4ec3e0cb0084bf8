"""Where a run's manifest comes from: --input, else input.manifest, else the demo world, else an error."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovlabel.engine.config import Config, DemoConfig, load_config
from ovlabel.engine.errors import ConfigError
from ovlabel.pipelines.inputs import resolve_input


def _demo(tmp_path: Path, *overrides: str) -> Config:
    return load_config(None, ["demo.num_images=1", "demo.image_size=32", f"demo.cache_dir={tmp_path}", *overrides])


def test_the_command_line_input_wins(tmp_path: Path) -> None:
    assert resolve_input(_demo(tmp_path, "input.manifest=cfg.jsonl"), "cli.jsonl") == "cli.jsonl"
    assert not list(tmp_path.iterdir())  # the demo world is not generated


def test_then_the_configured_manifest(tmp_path: Path) -> None:
    for cli in (None, ""):
        assert resolve_input(_demo(tmp_path, "input.manifest=cfg.jsonl"), cli) == "cfg.jsonl"
    assert not list(tmp_path.iterdir())


def test_then_the_demo_worlds_manifest(tmp_path: Path) -> None:
    cfg = _demo(tmp_path)
    assert isinstance(cfg.demo, DemoConfig)
    manifest = Path(resolve_input(cfg, None))
    assert manifest.is_file() and tmp_path in manifest.parents
    assert len(manifest.read_text().splitlines()) == 1
    assert resolve_input(cfg, None) == str(manifest)  # generated once


def test_no_input_at_all_says_what_to_pass() -> None:
    with pytest.raises(ConfigError, match=r"^no input: pass --input MANIFEST \(or set input.manifest in the config\)$"):
        resolve_input(Config(), None)
