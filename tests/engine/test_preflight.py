"""Preflight: what a config names is checked before a run starts."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovlabel.engine.shipped import config_path
from ovlabel.pipelines.options import load_run_config
from ovlabel.engine.errors import ConfigError, ModelWeightsError
from ovlabel.engine.captions import missing_model_error
from ovlabel.engine.preflight import check_spacy_model, preflight


def test_demo_config_passes() -> None:
    preflight(load_run_config(config_path("demo.yaml")))


def test_missing_part_lexicon_fails_before_the_run(tmp_path: Path) -> None:
    missing = tmp_path / "parts.yaml"
    cfg = load_run_config(config_path("demo.yaml"), [f"matching.part_lexicon={missing}"])
    with pytest.raises(ConfigError, match="matching.part_lexicon"):
        preflight(cfg)
    preflight(load_run_config(config_path("demo.yaml"), [f"matching.part_lexicon={missing}", "matching.lexicon_parts=false"]))


def test_missing_clip_checkpoint_names_the_key(tmp_path: Path) -> None:
    cfg = load_run_config(config_path("demo.yaml"), [f"clip.checkpoint={tmp_path / 'clip.safetensors'}"])
    with pytest.raises(ModelWeightsError, match="clip.checkpoint"):
        preflight(cfg)


def test_missing_spacy_model_has_the_loaders_error() -> None:
    with pytest.raises(ConfigError) as err:
        check_spacy_model("not_a_spacy_model")
    assert str(err.value) == str(missing_model_error("not_a_spacy_model"))


def test_missing_sam_checkpoint_names_the_official_file() -> None:
    cfg = load_run_config(config_path("demo.yaml"), ["masks.generator=sam", "masks.sam.model_type=vit_b"])
    with pytest.raises(ModelWeightsError) as err:
        preflight(cfg)
    url = "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth"
    assert str(err.value) == (f"no SAM checkpoint configured; download sam_vit_b_01ec64.pth from {url} "
                              "and set masks.sam.checkpoint=/path/to/sam_vit_b_01ec64.pth")
