"""The torch-op kernel (CUDA without CuPy, other devices, LPQ_KERNEL=torch) against the numpy
threshold-table reference, bit for bit, on the LP-FORMAT §9.4 inputs; and the dispatch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lpq.kernels as kernels
from lpq.formats import parse
from lpq.kernels import build_kernel_table, torch_native

from .test_fast_paths import LP_SPECS, _bits_equal, _inputs_for

BASELINES = ["int<4>", "int<8>", "uint<4>", "fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp4_e2m1", "fp<2,1>",
             "posit<8,2>", "posit<4,1>", "af<8,4>", "lns<8,3>", "flint<4>", "pot<4>", "int<4>@3.25"]


@pytest.mark.parametrize("spec", LP_SPECS + BASELINES)
@pytest.mark.parametrize("scale", [None, 0.375, 2.0**-5])
def test_torch_kernel_bit_exact(spec, scale):
    fmt = parse(spec)
    x = _inputs_for(fmt)
    ref = fmt.quantize(x, scale=scale)
    r, s = fmt.scale_pair(scale, np.float32) if scale is not None else fmt.scale_pair(None, np.float32)
    got = torch_native.quantize_f32(build_kernel_table(fmt), torch.from_numpy(x), r, s).numpy()
    assert _bits_equal(ref, got)


def test_forced_torch_kernel_through_format_quantize(monkeypatch):
    """LPQ_KERNEL=torch routes Format.quantize (scalar and per-channel scales) to the torch-op kernel."""
    monkeypatch.setattr(kernels, "_FORCE_TORCH", True)
    calls = []
    real = torch_native.quantize_f32
    monkeypatch.setattr(torch_native, "quantize_f32", lambda *a: calls.append(1) or real(*a))
    fmt = parse("lp<4,1,2,0.5>")
    x = torch.randn(8, 3, 5, generator=torch.Generator().manual_seed(0))
    scale = np.exp2(-np.arange(8.0)).reshape(8, 1, 1)
    for sc in (None, 0.25, scale):
        ref = fmt.quantize(x.numpy(), scale=sc)
        got = fmt.quantize(x, scale=sc)
        assert got.dtype == x.dtype and got.shape == x.shape
        assert _bits_equal(ref, got.numpy())
    assert len(calls) == 3
