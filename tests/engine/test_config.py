from __future__ import annotations

from pathlib import Path

import pytest

from ovlabel.engine.config import OVSEG_TEMPLATES, Config, MatchingConfig, load_config, parse_override
from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import RunConfig, load_run_config
from ovlabel.engine.errors import ConfigError


def test_defaults_follow_sam_and_ovseg() -> None:
    cfg = Config()
    assert (cfg.masks.sam.points_per_side, cfg.masks.sam.pred_iou_thresh, cfg.masks.sam.stability_score_thresh,
            cfg.masks.sam.box_nms_thresh, cfg.masks.sam.crop_n_layers) == (32, 0.88, 0.95, 0.7, 0)
    assert len(OVSEG_TEMPLATES) == 14 and cfg.clip.templates == OVSEG_TEMPLATES


def test_precedence_cli_over_file_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("masks:\n  device: cuda\n  sam:\n    points_per_side: 16\n")
    cfg = load_config(path, ["masks.device=cpu"])
    assert cfg.masks.device == "cpu"  # CLI beats file
    assert cfg.masks.sam.points_per_side == 16  # file beats default
    assert cfg.masks.sam.pred_iou_thresh == 0.88  # default


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("masks:\n  batchsize: 3\n")
    with pytest.raises(ConfigError, match="'masks.batchsize'"):
        load_config(path)
    with pytest.raises(ConfigError, match="'clip.modle'"):
        load_config(None, ["clip.modle=x"])


def test_bad_values_and_files_are_one_readable_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="masks.sam.points_per_side"):
        load_config(None, ["masks.sam.points_per_side=0"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("masks: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("masks.device")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("masks: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_override_values_are_typed() -> None:
    assert parse_override("clip.templates=['a {}.', 'the {}.']") == ("clip.templates", ["a {}.", "the {}."])
    assert parse_override("matching.lexicon_parts=true") == ("matching.lexicon_parts", True)


@pytest.mark.parametrize("name", ["default.yaml", "tiny.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    assert isinstance(load_run_config(config_path(name)), RunConfig)


def test_part_area_fraction_falls_back_to_the_object_floor() -> None:
    assert MatchingConfig(min_mask_area_fraction=0.01).part_area_fraction == 0.01
    assert MatchingConfig(min_mask_area_fraction=0.01, min_part_area_fraction=0.002).part_area_fraction == 0.002
