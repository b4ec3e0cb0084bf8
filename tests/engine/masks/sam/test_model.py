"""SAM model building: the no-checkpoint error, architectures, coherent random weights."""
from __future__ import annotations

import pytest
import torch

from ovlabel.engine.masks.settings import SamConfig
from ovlabel.engine.errors import ConfigError, ModelWeightsError
from ovlabel.engine.masks.sam import build_sam_model, check_sam_weights, make_random_sam_coherent, sam_architectures


def test_check_sam_weights_names_the_official_file() -> None:
    url = "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth"
    with pytest.raises(ModelWeightsError) as err:
        check_sam_weights(SamConfig(model_type="vit_h"))
    assert str(err.value) == (f"no SAM checkpoint configured; download sam_vit_h_4b8939.pth from {url} "
                              "and set masks.sam.checkpoint=/path/to/sam_vit_h_4b8939.pth")
    with pytest.raises(ModelWeightsError, match="download a vit_tiny checkpoint and set masks.sam.checkpoint="):
        check_sam_weights(SamConfig(model_type="vit_tiny"))
    with pytest.raises(ModelWeightsError, match="download a vit_nope checkpoint and"):
        check_sam_weights(SamConfig(model_type="vit_nope"))


def test_check_sam_weights_passes_with_a_checkpoint_or_random_weights() -> None:
    check_sam_weights(SamConfig(model_type="vit_h", checkpoint="/models/sam.pth"))
    check_sam_weights(SamConfig(model_type="vit_h", checkpoint="random"))


def test_unknown_model_type_is_a_config_error_before_the_checkpoint() -> None:
    assert {"vit_h", "vit_l", "vit_b", "vit_tiny"} <= set(sam_architectures())
    with pytest.raises(ConfigError, match="unknown masks.sam.model_type 'vit_nope'"):
        build_sam_model(SamConfig(model_type="vit_nope"))


def test_make_random_sam_coherent_ties_the_upscaling_taps() -> None:
    model, sha = build_sam_model(SamConfig(model_type="vit_tiny", checkpoint="random"))
    before = model.mask_decoder.output_hypernetworks_mlps[0].layers[-1].bias.clone()
    make_random_sam_coherent(model, logit_scale=2.0)
    assert sha is None and not model.training
    for module in model.mask_decoder.output_upscaling:
        if isinstance(module, torch.nn.ConvTranspose2d):
            assert torch.equal(module.weight, module.weight[:, :, :1, :1].expand_as(module.weight))
    torch.testing.assert_close(model.mask_decoder.output_hypernetworks_mlps[0].layers[-1].bias, 2.0 * before)


def test_the_preflight_checks_of_sam_import_no_torch() -> None:
    """The package's names load on first use: checking an architecture and a checkpoint takes no torch import."""
    import subprocess
    import sys

    code = ("import sys; from ovlabel.engine.masks.sam.model import check_sam_weights, sam_architecture; "
            "sam_architecture('vit_b'); import ovlabel.engine.masks.sam as sam; assert sam.__all__; "
            "print('torch' in sys.modules, 'segment_anything' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "False"], proc.stderr[-2000:]
