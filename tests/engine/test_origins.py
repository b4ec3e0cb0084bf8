"""`ovlabel config show`: the resolved config, each value with where it came from."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ovlabel.engine.config import Config, load_config
from ovlabel.engine.errors import ConfigError
from ovlabel.engine.origins import CLI, DEFAULT, FILE, format_resolved, leaves, resolve_config


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("masks:\n  device: cpu\n  sam:\n    points_per_side: 8\nmatching:\n  object_vocabulary: [cat]\n"
                    "demo: {num_images: 3}\n")
    return path


def test_each_value_says_default_file_or_cli(config_file: Path) -> None:
    resolved = resolve_config(config_file, ["masks.sam.points_per_side=16", "clip.device=cpu", "input.limit=5"])
    assert resolved.config == load_config(config_file, ["masks.sam.points_per_side=16", "clip.device=cpu",
                                                         "input.limit=5"])
    assert resolved.origin("masks.sam.points_per_side") == CLI  # the CLI beats the file
    assert resolved.origin("masks.device") == FILE
    assert resolved.origin("clip.device") == CLI and resolved.origin("input.limit") == CLI
    assert resolved.origin("matching.object_vocabulary") == FILE
    assert resolved.origin("demo.num_images") == FILE and resolved.origin("demo.seed") == DEFAULT
    assert resolved.origin("clip.model") == DEFAULT
    assert resolved.path == config_file
    assert [key for key, _, _ in resolved.values] == [key for key, _ in leaves(resolved.config.model_dump(mode="json"))]


def test_defaults_only_and_mapping_overrides() -> None:
    resolved = resolve_config(None, {"masks.sam.points_per_side": 4})
    assert resolved.path is None and resolved.origin("masks.sam.points_per_side") == CLI
    assert {origin for key, _, origin in resolved.values if key != "masks.sam.points_per_side"} == {DEFAULT}


def test_the_output_reads_back_as_the_same_config(config_file: Path) -> None:
    resolved = resolve_config(config_file, ["clip.templates=['a {}.', 'b, {}: c']"])
    text = format_resolved(resolved)
    assert text.startswith(f"# config file: {config_file}\n")
    assert Config.model_validate(yaml.safe_load(text)) == resolved.config
    line = next(line for line in text.splitlines() if line.strip().startswith("points_per_side:"))
    assert line.startswith("    points_per_side: 8") and line.endswith("# file")
    assert next(line for line in text.splitlines() if "templates:" in line).endswith("# cli")


def test_a_bad_config_is_refused_as_load_config_refuses_it(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="masks.sam.points_per_side"):
        resolve_config(config_file, ["masks.sam.points_per_side=0"])
