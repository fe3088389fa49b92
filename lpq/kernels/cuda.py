"""CUDA fast path: a CuPy RawKernel on the tensor's own memory (DLPack, no host copy).

Same algorithm and tables as the CPU kernel (lpq/kernels/tables.py); the two scale multiplies are explicit PTX
`mul.rn.f32` (no FMA contraction, no flush of subnormals), so they round exactly as the reference's RN32 products.
"""
from __future__ import annotations

import functools

import numpy as np

from .tables import FLAG_SIGNED, FLAG_ZERO_KEEPS_SIGN, PREFIX_SHIFT, KernelTable

_SOURCE = r"""
// RN float32 product that keeps subnormals whatever the compile flags: explicit PTX mul.rn.f32 (no .ftz). With
// __fmul_rn, x = 1e-45 times the scale came out 0 on an H200 even with --ftz=false (CuPy's NVRTC flags).
__device__ __forceinline__ float lpq_mul(float a, float b)
{
#ifdef __CUDA_ARCH__
    float p;
    asm("mul.rn.f32 %%0, %%1, %%2;" : "=f"(p) : "f"(a), "f"(b));
    return p;
#else
    return __fmul_rn(a, b);
#endif
}

extern "C" __global__
void lpq_quantize_f32(const unsigned int* __restrict__ x, unsigned int* __restrict__ out, long long n,
                      const unsigned int* __restrict__ lut, const unsigned int* __restrict__ thr,
                      const unsigned int* __restrict__ vals, unsigned int flags,
                      float r, float s, int use_scale)
{
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        unsigned int b = x[i];
        if (use_scale) b = __float_as_uint(lpq_mul(__uint_as_float(b), r));
        unsigned int sign = b & 0x80000000u, a = b & 0x7fffffffu, o;
        if (a > 0x7f800000u) { out[i] = 0x7fc00000u; continue; }
        if (a == 0u) {
            o = (flags & %(KEEP)du) ? b : 0u;
        } else if (sign && !(flags & %(SIGNED)du)) {
            o = 0u;
        } else {
            unsigned int packed = __ldg(lut + (a >> %(SHIFT)d));
            unsigned int j = packed & 0xffffu, end = j + (packed >> 16);
            while (j < end && __ldg(thr + j) <= a) ++j;
            unsigned int v = __ldg(vals + j);
            o = (v == 0u && !(flags & %(KEEP)du)) ? 0u : (v | sign);
        }
        if (use_scale) o = __float_as_uint(lpq_mul(__uint_as_float(o), s));
        out[i] = o;
    }
}
""" % {"KEEP": FLAG_ZERO_KEEPS_SIGN, "SIGNED": FLAG_SIGNED, "SHIFT": PREFIX_SHIFT}


# Denormals must survive the scale multiply (lpq_mul in the source does it in PTX; these flags say the same for the
# rest): a subnormal input times r became 0, then 0 instead of the format's smallest code (seen on an H200 with
# x = 1e-45 and a scale; the start-up check caught it and fell back to the torch-op kernel).
NVRTC_OPTIONS = ("--std=c++17", "--ftz=false", "--fmad=false", "--prec-div=true", "--prec-sqrt=true")


def available() -> bool:
    """True when CuPy imports and sees a CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@functools.lru_cache(maxsize=None)
def _kernel(device_id: int):
    import cupy

    with cupy.cuda.Device(device_id):
        return cupy.RawKernel(_SOURCE, "lpq_quantize_f32", options=NVRTC_OPTIONS)


def _device_tables(fmt, table: KernelTable, device_id: int):
    import cupy

    cache = fmt.__dict__.setdefault("_cuda_tables", {})
    if device_id not in cache:
        with cupy.cuda.Device(device_id):
            cache[device_id] = tuple(cupy.asarray(a) for a in (table.lut, table.thresholds, table.values))
    return cache[device_id]


def _external_stream(cupy, ptr: int):
    """torch's current stream as a CuPy stream (CuPy 14 deprecates ExternalStream for Stream.from_external, which
    older CuPy lacks; the warning is silenced, the behaviour is the same)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cupy.cuda.ExternalStream(ptr)


def quantize_f32(fmt, table: KernelTable, x, out, r: float | None, s: float | None) -> None:
    """out[:] = Q(x) for contiguous float32 CUDA tensors (1-D views), on x's stream."""
    import cupy
    import torch

    device_id = x.device.index if x.device.index is not None else torch.cuda.current_device()
    n = x.numel()
    if n == 0:
        return
    xb = cupy.from_dlpack(x.view(torch.int32)).view(cupy.uint32)
    ob = cupy.from_dlpack(out.view(torch.int32)).view(cupy.uint32)
    lut, thr, vals = _device_tables(fmt, table, device_id)
    threads = 256
    blocks = min((n + threads - 1) // threads, 65535 * 8)
    stream = torch.cuda.current_stream(x.device).cuda_stream
    use_scale = r is not None
    with cupy.cuda.Device(device_id), _external_stream(cupy, stream):
        _kernel(device_id)(
            (blocks,), (threads,),
            (xb, ob, np.int64(n), lut, thr, vals, np.uint32(table.flags),
             np.float32(r if use_scale else 1.0), np.float32(s if use_scale else 1.0), np.int32(use_scale)),
        )
