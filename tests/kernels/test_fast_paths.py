"""Fast paths (numba CPU kernel, CuPy CUDA kernel) against the numpy threshold-table
reference, bit for bit (LP-FORMAT §9.4), plus the torch-facing contract of Format.quantize:
same type, shape, dtype and device out."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lpq.formats import parse

from .inputs import stratified_sweep, threshold_neighbours

LP_SPECS = ["lp<8,1,3,0>", "lp<8,2,7,0>", "lp<5,1,3,0.25>", "lp<4,1,2,0,underflow=flush>",
            "lp<6,2,3,0,round=linear>", "lp<16,1,4,-2.25>", "lp<12,0,11,0.3>", "lp<2,0,1,0.75>"]

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    nan = np.isnan(a)
    return np.array_equal(nan, np.isnan(b)) and np.array_equal(a.view(np.uint32)[~nan], b.view(np.uint32)[~nan])


def _special_inputs() -> np.ndarray:
    f32 = np.finfo(np.float32)
    vals = np.array([0.0, f32.smallest_subnormal, f32.smallest_normal, f32.max, np.inf, np.nan, 1.0], np.float32)
    with np.errstate(over="ignore"):
        vals = np.concatenate([vals, np.nextafter(vals, np.float32(np.inf)), np.nextafter(vals, np.float32(0))])
    return np.concatenate([vals, -vals])


def _inputs_for(fmt) -> np.ndarray:
    """Every threshold and 4 float32 neighbours each side, both signs; code book values;
    specials; the stratified sweep over every upper-16-bit prefix (LP-FORMAT §9.4)."""
    near = threshold_neighbours(fmt, 4)
    codebook = fmt.codebook().astype(np.float32)
    return np.concatenate([near, -near, codebook, _special_inputs(), stratified_sweep()]).astype(np.float32)


@pytest.mark.parametrize("spec", LP_SPECS)
@pytest.mark.parametrize("scale", [None, 0.375, 2.0**-5])
def test_cpu_kernel_bit_exact(spec, scale):
    fmt = parse(spec)
    x = _inputs_for(fmt)
    ref = fmt.quantize(x, scale=scale)
    fast = fmt.quantize(torch.from_numpy(x), scale=scale).numpy()
    assert _bits_equal(ref, fast)


@pytest.mark.parametrize("n", [1, 7, 40_000])  # serial and parallel kernels
def test_cpu_kernel_sizes(n):
    fmt = parse("lp<8,1,3,0>")
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    assert _bits_equal(fmt.quantize(x), fmt.quantize(torch.from_numpy(x)).numpy())


def test_torch_contract_shape_dtype_noncontiguous():
    fmt = parse("lp<8,1,3,0.5>")
    x = torch.randn(6, 5, 4).transpose(0, 2)  # non-contiguous
    out = fmt.quantize(x)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == x.dtype
    assert _bits_equal(fmt.quantize(x.contiguous().numpy()), out.contiguous().numpy())
    assert x.is_contiguous() is False  # input untouched


def test_torch_empty_and_scalar():
    fmt = parse("lp<8,1,3,0>")
    assert fmt.quantize(torch.empty(0)).shape == (0,)
    out = fmt.quantize(torch.tensor(3.0))
    assert out.shape == () and out.item() == pytest.approx(2.953652292)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(dtype):
    fmt = parse("lp<6,1,3,0>")
    x = torch.randn(1000).to(dtype)
    out = fmt.quantize(x)
    assert out.dtype == dtype
    expect = torch.from_numpy(fmt.quantize(x.float().numpy())).to(dtype)
    assert torch.equal(out, expect)


def test_float64_decides_exactly_and_returns_float32_values():
    fmt = parse("lp<8,2,7,0>")
    tie = 2.0**22  # exact tie -> even code 0x7e (t=20); just above it -> 0x7f (t=24)
    x = torch.tensor([3.0, tie, tie * (1 + 2.0**-40), 0.1], dtype=torch.float64)
    out = fmt.quantize(x)
    assert out.dtype == torch.float64
    assert np.array_equal(out.numpy(), fmt.quantize(x.numpy()))
    assert out[1].item() == 2.0**20 and out[2].item() == 2.0**24  # float32 rounding of x[2] would give the tie
    assert np.array_equal(out.numpy().astype(np.float32).astype(np.float64), out.numpy())  # float32 code-book values


def test_requires_grad_input_is_detached():
    fmt = parse("lp<8,1,3,0>")
    x = torch.randn(10, requires_grad=True)
    out = fmt.quantize(x)
    assert not out.requires_grad


def test_per_channel_scale_broadcast():
    fmt = parse("lp<4,0,2,0>")
    x = torch.randn(3, 8)
    scale = torch.tensor([[0.5], [1.0], [4.0]])
    out = fmt.quantize(x, scale=scale)
    ref = fmt.quantize(x.numpy(), scale=scale.numpy())
    assert _bits_equal(ref, out.numpy())
    for c in range(3):
        row = fmt.quantize(x[c].numpy(), scale=float(scale[c]))
        assert _bits_equal(row, out[c].numpy())


def test_integer_tensor_rejected():
    with pytest.raises(ValueError, match="floating-point"):
        parse("lp<8,1,3,0>").quantize(torch.arange(4))


def test_bad_scale_rejected():
    with pytest.raises(ValueError, match="scale"):
        parse("lp<8,1,3,0>").quantize(torch.ones(3), scale=-1.0)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("spec", LP_SPECS)
@pytest.mark.parametrize("scale", [None, 0.375, 2.0**-5])
def test_cuda_kernel_bit_exact(spec, scale):
    pytest.importorskip("cupy")
    fmt = parse(spec)
    x = _inputs_for(fmt)
    ref = fmt.quantize(x, scale=scale)
    xt = torch.from_numpy(x).cuda()
    out = fmt.quantize(xt, scale=scale)
    assert out.device == xt.device and out.dtype == torch.float32
    assert _bits_equal(ref, out.cpu().numpy())
    # the CuPy kernel itself (the dispatch above falls back to the torch-op kernel if the start-up check fails)
    from lpq.kernels import build_kernel_table, cuda_run

    r, s = fmt.scale_pair(scale, np.float32)
    assert _bits_equal(ref, cuda_run(fmt, build_kernel_table(fmt), xt, r, s).cpu().numpy())


@pytest.mark.gpu
@cuda
def test_cupy_kernel_is_trusted():
    """On a GPU with CuPy the start-up check accepts the CuPy kernel (it fell back to the torch-op kernel on the first
    GPU run, for a NaN payload and for flushed denormals)."""
    pytest.importorskip("cupy")
    from lpq.kernels import _cupy_ok

    _cupy_ok.cache_clear()
    assert _cupy_ok()


@pytest.mark.gpu
@cuda
def test_cuda_per_channel_and_half():
    pytest.importorskip("cupy")
    fmt = parse("lp<8,1,3,0>")
    x = torch.randn(4, 1000, device="cuda")
    scale = torch.tensor([[0.5], [1.0], [2.0], [8.0]], device="cuda")
    assert _bits_equal(fmt.quantize(x.cpu(), scale=scale.cpu()).numpy(), fmt.quantize(x, scale=scale).cpu().numpy())
    xh = x.half()
    assert torch.equal(fmt.quantize(xh).cpu(), fmt.quantize(xh.cpu()))
