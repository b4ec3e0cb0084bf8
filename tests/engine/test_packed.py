"""oneDNN-packed linear and attention layers against the torch layers they replace."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ovlabel.engine import packed
from ovlabel.engine.errors import ConfigError

pytestmark = pytest.mark.skipif(not packed.packing_available(), reason="this torch build has no oneDNN-packed linear")


def _linear(seed: int = 0, bias: bool = True) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(48, 80, bias=bias).eval()


@pytest.mark.parametrize("bias", [True, False])
def test_packed_linear_computes_the_linear_layer_in_fp32(bias: bool) -> None:
    layer = _linear(bias=bias)
    fast = packed.PackedLinear.of(layer)
    x = torch.randn(2, 7, 48)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), layer(x), rtol=1e-5, atol=1e-5)
        strided = torch.randn(48, 5).t()  # not contiguous
        torch.testing.assert_close(fast(strided), layer(strided), rtol=1e-5, atol=1e-5)
    assert fast(x).shape == (2, 7, 80) and fast(x).dtype == torch.float32


def test_packed_linear_in_bf16_rounds_the_matmul_and_returns_the_callers_dtype() -> None:
    layer = _linear()
    fast = packed.PackedLinear.of(layer, torch.bfloat16)
    x = torch.randn(5, 48)
    with torch.inference_mode():
        y, exact = fast(x), layer(x)
        assert y.dtype == torch.float32 and fast(x.bfloat16()).dtype == torch.bfloat16
    error = float((y - exact).abs().max())
    assert 0.0 < error < 0.05  # bf16 products: close, and really another arithmetic


def _attention(batch_first: bool, seed: int = 1) -> nn.MultiheadAttention:
    torch.manual_seed(seed)
    return nn.MultiheadAttention(32, 4, batch_first=batch_first).eval()


@pytest.mark.parametrize("batch_first", [True, False])
def test_packed_attention_is_self_attention_with_or_without_a_mask(batch_first: bool) -> None:
    mha = _attention(batch_first)
    fast = packed.PackedAttention(mha)
    x = torch.randn(3, 6, 32) if batch_first else torch.randn(6, 3, 32)
    causal = torch.full((6, 6), float("-inf")).triu(1)
    per_head = torch.rand(3 * 4, 6, 6)
    with torch.inference_mode():
        for mask in (None, causal, causal.isinf(), per_head):
            got = fast(x, x, x, need_weights=False, attn_mask=mask)[0]
            want = mha(x, x, x, need_weights=False, attn_mask=mask)[0]
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_packed_attention_refuses_what_it_does_not_compute() -> None:
    fast = packed.PackedAttention(_attention(True))
    x, y = torch.randn(2, 4, 32), torch.randn(2, 4, 32)
    with pytest.raises(ConfigError, match="self-attention"):
        fast(x, y, y, need_weights=False)
    with pytest.raises(ConfigError, match="self-attention"):
        fast(x, x, x)  # need_weights defaults to True, as in nn.MultiheadAttention
    with pytest.raises(ConfigError, match="one in-projection"):
        packed.PackedAttention(nn.MultiheadAttention(32, 4, kdim=16, vdim=16))


def test_value_projection_is_the_same_for_both_layers() -> None:
    mha = _attention(True)
    x = torch.randn(2, 5, 32)
    with torch.inference_mode():
        torch.testing.assert_close(packed.value_projection(packed.PackedAttention(mha), x),
                                   packed.value_projection(mha, x), rtol=1e-5, atol=1e-5)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(32)
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm(x))


def _tower(seed: int = 2) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(*[_Block() for _ in range(4)]).eval()


def _packed(tower: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    copied = copy.deepcopy(tower)
    assert packed.pack_linears(copied, dtype) == 4 * 3  # attention, two mlp layers per block
    return copied


def test_pack_linears_swaps_every_linear_and_attention_layer_and_keeps_the_rest() -> None:
    tower = _tower()
    fast = _packed(tower)
    assert sum(isinstance(m, packed.PackedAttention) for m in fast.modules()) == 4
    assert sum(isinstance(m, packed.PackedLinear) for m in fast.modules()) == 4 * 4  # in, out, 2 mlp
    assert not any(isinstance(m, (nn.Linear, nn.MultiheadAttention)) for m in fast.modules())
    assert {n.split(".")[-2] for n, _ in fast.named_parameters()} == {"norm"}
    assert packed.packed_dtype(fast) == torch.float32 and packed.packed_dtype(tower) is None
    x = torch.randn(2, 9, 32)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), tower(x), rtol=1e-4, atol=1e-5)


def test_bf16_matmuls_keep_a_tower_closer_to_fp32_than_a_bf16_model() -> None:
    tower = _tower()
    x = torch.randn(2, 9, 32)
    with torch.inference_mode():
        exact = tower(x)
        matmuls = _packed(tower, torch.bfloat16)(x)
        cast = copy.deepcopy(tower).bfloat16()(x.bfloat16()).float()
    assert packed.packed_dtype(_packed(tower, torch.bfloat16)) == torch.bfloat16
    matmul_error, cast_error = float((matmuls - exact).abs().max()), float((cast - exact).abs().max())
    assert 0.0 < matmul_error < cast_error / 2


def test_packing_is_reported_unavailable_when_the_ops_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    packed.packing_available.cache_clear()

    def missing(*args: object) -> None:
        raise RuntimeError("no mkldnn here")

    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", missing)
    try:
        assert not packed.packing_available(torch.float32)
    finally:
        packed.packing_available.cache_clear()
