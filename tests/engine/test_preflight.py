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


@pytest.mark.parametrize(("config", "key", "file"), [
    ("alpha-clip-l14.yaml", "clip.region_checkpoint", "clip_l14_grit20m_fultune_2xe.pth"),
    ("ovseg-clip-l14.yaml", "clip.checkpoint", "ovseg_clip_l_9a1909.pth")])
def test_the_region_encoder_configs_name_the_file_to_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                config: str, key: str, file: str) -> None:
    monkeypatch.chdir(tmp_path)  # relative checkpoint paths: the working directory, then the configs folder
    cfg = load_run_config(config_path(config))
    with pytest.raises(ModelWeightsError) as err:
        preflight(cfg)
    assert str(err.value) == f"checkpoint file '{file}' not found; provide {file} and set {key}=/path/to/{file}"
    (tmp_path / file).write_bytes(b"present")  # preflight only looks for the file (and its sha256 when set)
    preflight(load_run_config(config_path(config)))


def test_region_encoder_settings_fail_before_the_run(tmp_path: Path) -> None:
    weights = tmp_path / "tower.pth"
    weights.write_bytes(b"x")
    with pytest.raises(ConfigError, match="clip.region_checkpoint is only read with matching.crop_mode=alpha or "
                                          "mask_prompt \\(crop_mode is masked\\)"):
        preflight(load_run_config(config_path("demo.yaml"), [f"clip.region_checkpoint={weights}"]))
    preflight(load_run_config(config_path("demo.yaml"), [f"clip.region_checkpoint={weights}", "matching.crop_mode=alpha"]))
    with pytest.raises(ModelWeightsError, match="region_checkpoint_sha256"):
        preflight(load_run_config(config_path("demo.yaml"), [f"clip.region_checkpoint={weights}", "matching.crop_mode=alpha",
                                                             f"clip.region_checkpoint_sha256={'f' * 64}"]))
    with pytest.raises(ConfigError, match="crop_mode=mask_prompt needs a ViT image tower; open_clip model 'RN50'"):
        preflight(load_run_config(config_path("demo.yaml"), ["matching.crop_mode=mask_prompt", "clip.model=RN50",
                                                             "clip.checkpoint=random", "clip.checkpoint_sha256=null"]))
    with pytest.raises(ModelWeightsError, match="crop_mode=mask_prompt needs OVSeg's learned mask prompts, which "
                                                "clip.pretrained=openai lacks: download ovseg_clip_l_9a1909.pth"):
        preflight(load_run_config(config_path("demo.yaml"), ["matching.crop_mode=mask_prompt", "clip.model=ViT-B-16",
                                                             "clip.pretrained=openai", "clip.checkpoint=null"]))
    preflight(load_run_config(config_path("demo.yaml"), ["matching.crop_mode=mask_prompt", "clip.checkpoint=random",
                                                         "clip.checkpoint_sha256=null"]))
