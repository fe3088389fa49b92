"""The CUDA kernel's source, compiled for the host with a tiny CUDA shim, must agree bit for
bit with the numpy reference. This checks the GPU algorithm on machines without a GPU; on a
GPU machine tests/kernels/test_fast_paths.py also runs the real kernel."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from lpq.formats import parse
from lpq.kernels import build_kernel_table
from lpq.kernels.cuda import _SOURCE

from .inputs import stratified_sweep, threshold_neighbours

_SHIM = r"""
#include <cstring>
#include <cstdint>
struct Dim { long long x; };
static Dim blockIdx{0}, blockDim{1}, threadIdx{0}, gridDim{1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
static inline unsigned int __ldg(const unsigned int* p) { return *p; }
static inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, 4); return u; }
static inline float __fmul_rn(float a, float b) { volatile float p = a * b; return p; }
"""


@pytest.fixture(scope="module")
def host_kernel(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the CUDA source for the host")
    d = tmp_path_factory.mktemp("cuda_host")
    src = d / "k.cpp"
    src.write_text(_SHIM + _SOURCE)
    lib = d / "k.so"
    subprocess.run([cxx, "-O1", "-ffp-contract=off", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    fn = ctypes.CDLL(str(lib)).lpq_quantize_f32
    p = ctypes.c_void_p
    fn.argtypes = [p, p, ctypes.c_longlong, p, p, p, ctypes.c_uint, ctypes.c_float, ctypes.c_float, ctypes.c_int]
    return fn


@pytest.mark.parametrize(
    "spec,scale",
    [("lp<8,1,3,0>", None), ("lp<8,2,7,0>", None), ("lp<4,1,2,0,underflow=flush>", 0.37),
     ("lp<6,2,3,0.3,round=linear>", None), ("lp<16,1,4,-2.25>", 3.0), ("lp<2,0,1,0.75>", None)],
)
def test_cuda_source_matches_reference(host_kernel, spec, scale):
    fmt = parse(spec)
    near = threshold_neighbours(fmt, 2)
    x = np.concatenate([stratified_sweep(seed=1), near, -near]).astype(np.float32)
    table = build_kernel_table(fmt)
    out = np.empty_like(x)
    r, s = fmt.scale_pair(scale, np.float32)
    use = r is not None
    host_kernel(
        x.ctypes.data, out.ctypes.data, x.size, table.lut.ctypes.data, table.thresholds.ctypes.data,
        table.values.ctypes.data, table.flags, float(r) if use else 1.0, float(s) if use else 1.0, int(use),
    )
    ref = fmt.quantize(x, scale=scale)
    nan = np.isnan(ref)
    assert np.array_equal(nan, np.isnan(out))
    assert np.array_equal(ref.view(np.uint32)[~nan], out.view(np.uint32)[~nan])


def test_kernel_keeps_denormals():
    """Regression (first GPU run, H200): NVRTC flushed the subnormal product x*r to zero, so x = 1e-45 with a scale
    gave 0 instead of the smallest code; the kernel is compiled with --ftz=false (checked on the GPU by
    benchmarks/gpu_check.py and tests/kernels/test_fast_paths.py)."""
    from lpq.kernels.cuda import NVRTC_OPTIONS

    from lpq.kernels.cuda import _SOURCE

    assert "--ftz=false" in NVRTC_OPTIONS and "--fmad=false" in NVRTC_OPTIONS
    assert 'asm("mul.rn.f32 %0, %1, %2;"' in _SOURCE and "__fmul_rn(__uint_as_float" not in _SOURCE
