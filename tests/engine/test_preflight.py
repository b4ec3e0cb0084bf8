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


def test_a_missing_or_bad_vocabulary_fails_before_the_run_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"vocabulary file .*classes\.yaml' not found"):
        preflight(load_run_config(config_path("demo.yaml"), [f"vocabulary.file={tmp_path / 'classes.yaml'}"]))
    (tmp_path / "classes.yaml").write_text("car: [auto]\ntruck: [auto]\n")
    with pytest.raises(ConfigError, match=r"classes\.yaml.*'auto' under both 'car' and 'truck'"):
        preflight(load_run_config(config_path("demo.yaml"), [f"vocabulary.file={tmp_path / 'classes.yaml'}"]))


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


DEMO_CLIP_SHA = "4178b4bc655936d299c8ad96586ef560cb39ffefcb21a2e18ed5de762e830ee9"  # configs/demo.yaml's


def test_an_unknown_clip_model_fails_before_the_run() -> None:
    cfg = load_run_config(config_path("demo.yaml"), ["clip.model=ViT-Nope-16"])
    with pytest.raises(ConfigError, match="unknown open_clip model 'ViT-Nope-16'"):
        preflight(cfg)


def test_an_unknown_pretrained_tag_or_no_clip_weights_fail_before_the_run() -> None:
    tag = load_run_config(config_path("demo.yaml"), ["clip.model=ViT-B-16", "clip.checkpoint=null",
                                                     "clip.pretrained=laion_nope"])
    with pytest.raises(ConfigError, match="clip.pretrained 'laion_nope'.*ViT-B-16.*openai"):
        preflight(tag)
    none = load_run_config(config_path("demo.yaml"), ["clip.checkpoint=null", "clip.pretrained=null"])
    with pytest.raises(ModelWeightsError, match="no CLIP weights configured"):
        preflight(none)


def test_a_wrong_clip_checkpoint_hash_names_the_file_and_both_hashes() -> None:
    cfg = load_run_config(config_path("demo.yaml"), [f"clip.checkpoint_sha256={'f' * 64}"])
    with pytest.raises(ModelWeightsError) as err:
        preflight(cfg)
    message = str(err.value)
    assert "ovlabel-tiny-clip.safetensors" in message and DEMO_CLIP_SHA in message and "f" * 64 in message
    assert "clip.checkpoint_sha256" in message
    preflight(load_run_config(config_path("demo.yaml"), [f"clip.checkpoint_sha256={DEMO_CLIP_SHA.upper()}"]))


def test_a_wrong_sam_checkpoint_hash_or_model_type_fails_before_the_run(tmp_path: Path) -> None:
    weights = tmp_path / "sam.pth"
    weights.write_bytes(b"not really weights")
    sam = ["masks.generator=sam", "masks.sam.model_type=vit_tiny", f"masks.sam.checkpoint={weights}"]
    cfg = load_run_config(config_path("demo.yaml"), [*sam, f"masks.sam.checkpoint_sha256={'f' * 64}"])
    with pytest.raises(ModelWeightsError, match=f"'{weights}' has sha256 [0-9a-f]{{64}}, expected f{{64}} "
                                                 r"\(masks.sam.checkpoint_sha256\)"):
        preflight(cfg)
    odd = load_run_config(config_path("demo.yaml"), ["masks.generator=sam", "masks.sam.model_type=vit_nope",
                                                     "masks.sam.checkpoint=random"])
    with pytest.raises(ConfigError, match="unknown masks.sam.model_type 'vit_nope'"):
        preflight(odd)


def test_dense_mode_needs_a_vit_image_tower() -> None:
    dense = ["matching.crop_mode=dense", "clip.checkpoint=random", "clip.checkpoint_sha256=null"]
    preflight(load_run_config(config_path("demo.yaml"), dense))  # the demo CLIP is a ViT
    cfg = load_run_config(config_path("demo.yaml"), [*dense, "clip.model=RN50"])
    with pytest.raises(ConfigError, match="crop_mode=dense needs a ViT image tower; open_clip model 'RN50' has a ResNet"):
        preflight(cfg)
    preflight(load_run_config(config_path("demo.yaml"), ["clip.model=RN50", "clip.checkpoint=random",
                                                         "clip.checkpoint_sha256=null"]))  # masked crops: any tower
