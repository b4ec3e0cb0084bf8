"""Checkpoints: sha256 verification, safe loading only, one-line errors naming the file to provide."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from ovlabel.engine.config import ClipConfig
from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.errors import ConfigError, ModelWeightsError
from ovlabel.engine.weights import load_state_dict, resolve_checkpoint, sha256_file


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"weight": _Evil()}, fh)
    with pytest.raises(ModelWeightsError, match="weights_only=True"):
        load_state_dict(path)


def test_sha256_is_verified(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(2)}, path)
    assert resolve_checkpoint(str(path), "k", sha256_file(path)) == path
    with pytest.raises(ModelWeightsError, match="expected 00"):
        resolve_checkpoint(str(path), "masks.sam.checkpoint", "00" * 32)


def test_missing_and_unreachable_files_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelWeightsError, match="provide sam_vit_b.pth and set masks.sam.checkpoint="):
        resolve_checkpoint(str(tmp_path / "sam_vit_b.pth"), "masks.sam.checkpoint")
    monkeypatch.setenv("OVLABEL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelWeightsError, match="download x.pth by hand and set k=/path/to/x.pth"):
        resolve_checkpoint("http://127.0.0.1:9/x.pth", "k")
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_sam_loads_a_safetensors_checkpoint_through_the_real_path(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from ovlabel.engine.masks.sam.model import build_sam_model

    model, sha = build_sam_model(SamConfig(model_type="vit_tiny", checkpoint="random:3"))
    path = tmp_path / "sam_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    loaded, loaded_sha = build_sam_model(SamConfig(model_type="vit_tiny", checkpoint=str(path)))
    assert sha is None and loaded_sha == sha256_file(path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_sam_without_checkpoint_names_the_official_file() -> None:
    from ovlabel.engine.masks.sam.model import build_sam_model

    with pytest.raises(ModelWeightsError, match="sam_vit_h_4b8939.pth from https://dl.fbaipublicfiles.com"):
        build_sam_model(SamConfig(model_type="vit_h"))


def test_clip_checkpoint_must_fit_the_architecture(tmp_path: Path) -> None:
    from ovlabel.engine.matching import build_clip_model

    path = tmp_path / "bad.pth"
    torch.save({"visual.proj": torch.zeros(3)}, path)
    with pytest.raises(ModelWeightsError, match="does not fit open_clip model"):
        build_clip_model(ClipConfig(model="ovlabel-tiny-clip", pretrained=None, checkpoint=str(path)))


def test_random_weights_are_a_checkpoint_location() -> None:
    from ovlabel.engine.weights import check_local_checkpoint, random_weights_seed

    assert (random_weights_seed("random"), random_weights_seed("random:7"), random_weights_seed("/m/random.pt")) == (0, 7, None)
    assert random_weights_seed(None) is None
    check_local_checkpoint("random:3", "masks.sam.checkpoint")  # no file to find
    with pytest.raises(ConfigError, match="integer seed"):
        random_weights_seed("random:x")


def test_bf16_is_used_on_cuda_by_default_and_everywhere_when_asked() -> None:
    from ovlabel.engine.weights import uses_bf16

    assert uses_bf16("auto", "cuda") and uses_bf16("auto", "cuda:1") and not uses_bf16("auto", "cpu")
    assert uses_bf16("bf16", "cpu") and not uses_bf16("fp32", "cuda")
