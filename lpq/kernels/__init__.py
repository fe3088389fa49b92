"""Fast fake-quantization backends behind one dispatch: numba on CPU, CuPy on CUDA, and a
torch-op kernel (`torch_native`) on CUDA without CuPy and on other devices.

Both consume the same float32 tables (`tables.py`) and must equal the numpy threshold-table
reference (`Format.quantize_reference`) bit for bit. float32 tensors run natively; float16
and bfloat16 compute in float32 and round back; float64 uses the exact float64 reference.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any

import numpy as np

from .tables import KernelTable, build_kernel_table

__all__ = ["KernelTable", "build_kernel_table", "quantize_tensor"]


def quantize_tensor(fmt, x, scale: Any = None):
    """Fake-quantize a torch tensor with `fmt`; same shape, dtype and device as `x`."""
    import torch

    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    x = x.detach()
    if x.dtype == torch.float64:
        res = fmt.quantize_reference(x.cpu().numpy(), _scale_to_numpy(scale))
        return torch.from_numpy(res).to(x.device)
    xf = x.to(torch.float32).contiguous()
    scalar_scale = scale is None or np.ndim(_scale_to_numpy(scale)) == 0 or _numel(scale) == 1
    if scalar_scale:
        r, s = fmt.scale_pair(None if scale is None else float(np.asarray(_scale_to_numpy(scale)).reshape(())), np.float32)
        out = _run_f32(fmt, xf, r, s)
    else:  # per-channel (broadcast) scale: y = RN32(x*r); Q; out = RN32(q*s), as separate passes
        r, s = fmt.scale_pair(_scale_to_numpy(scale), np.float32)
        rt = torch.as_tensor(np.ascontiguousarray(r), device=x.device)
        st = torch.as_tensor(np.ascontiguousarray(s), device=x.device)
        out = _run_f32(fmt, (xf * rt).contiguous(), None, None)
        out = out * st
    return out if out.dtype == x.dtype else out.to(x.dtype)


def _run_f32(fmt, xf, r, s):
    import torch

    table = build_kernel_table(fmt)
    if xf.is_cuda and _cupy_ok():
        out = cuda_run(fmt, table, xf, r, s)
    elif xf.device.type != "cpu" or _FORCE_TORCH:
        from . import torch_native

        out = torch_native.quantize_f32(table, xf, r, s)
    else:
        from . import cpu

        # numpy's allocator asks for transparent huge pages on large buffers: far fewer page
        # faults on the fresh output than torch.empty_like (measured ~10 ms on 16M values)
        out_np = np.empty(xf.numel(), dtype=np.float32)
        cpu.quantize_f32(table, xf.view(-1).numpy(), out_np, r, s, threads=torch.get_num_threads())
        out = torch.from_numpy(out_np).view(xf.shape)
    return out


# LPQ_KERNEL=torch: use the torch-op kernel on every device (tests, debugging, platforms without numba/CuPy)
_FORCE_TORCH = os.environ.get("LPQ_KERNEL", "").lower() == "torch"


@functools.lru_cache(maxsize=None)
def _cupy_ok() -> bool:
    """CuPy importable with a device and its kernel equal to the torch-op kernel on a probe
    (checked once per process); otherwise CUDA tensors use the torch-op kernel, with one
    warning that names the reason (CuPy missing: the extra that installs it)."""
    if _FORCE_TORCH:
        return False
    import torch

    from . import cuda

    log = logging.getLogger("lpq")
    if not cuda.available():
        log.warning("CuPy is not available: CUDA fake-quantization uses the torch-op kernel (same results, slower); "
                    "pip install -e '.[gpu]' installs cupy-cuda13x")
        return False
    problem = kernel_disagreement(cuda_run, torch.device("cuda"))
    if problem:
        log.warning("the CuPy kernel failed its start-up check (%s): CUDA fake-quantization uses the torch-op "
                    "kernel instead (same results, slower)", problem)
        return False
    return True


def cuda_run(fmt, table, xf, r, s):
    """The CuPy kernel with the calling convention of torch_native.quantize_f32."""
    import torch

    from . import cuda

    out = torch.empty_like(xf)
    cuda.quantize_f32(fmt, table, xf.view(-1), out.view(-1), r, s)
    return out


_PROBE_SPECS = ("lp<4,1,2,0.5>", "lp<8,2,5,-3>", "int<4>", "fp<2,1>", "uint<4>")


def kernel_disagreement(run, device) -> str | None:
    """None when `run(fmt, table, x, r, s)` equals the torch-op kernel bit for bit on `device` (any NaN
    equals any NaN) for a few formats, on every threshold and its float32 neighbours, zeros of both signs,
    infinities and NaN, with and without a scale; else what went wrong. Run once before a
    compiled kernel that this machine has not exercised is trusted (CuPy needs NVRTC and
    DLPack at run time, which no CPU test reaches)."""
    import torch

    from ..formats import parse
    from . import torch_native

    try:
        for spec in _PROBE_SPECS:
            fmt = parse(spec)
            table = build_kernel_table(fmt)
            thr = table.thresholds.view(np.float32)
            near = np.concatenate([thr, np.nextafter(thr, np.float32(0)), np.nextafter(thr, np.float32(np.inf))])
            pts = np.concatenate([near, -near, np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4e38])])
            x = torch.from_numpy(pts.astype(np.float32)).to(device)
            for r, s in ((None, None), (1.75, 0.5714286)):
                got_f = run(fmt, table, x.clone(), r, s).cpu()
                want_f = torch_native.quantize_f32(table, x.clone(), r, s).cpu()
                got, want = got_f.view(torch.int32), want_f.view(torch.int32)
                # NaN in -> NaN out; its payload is no format's business: CUDA arithmetic on a NaN returns
                # 0x7fffffff where the kernels write 0x7fc00000 (seen on an H200: the torch-op kernel's final
                # multiply by the scale). Every other bit must agree.
                differ = (got != want) & ~(torch.isnan(got_f) & torch.isnan(want_f))
                if bool(differ.any()):
                    bad = int(differ.nonzero()[0])
                    return f"{spec}: input {pts[bad]!r} gave bits {int(got[bad]) & 0xFFFFFFFF:#010x}, " \
                           f"expected {int(want[bad]) & 0xFFFFFFFF:#010x}"
    except Exception as exc:  # noqa: BLE001 - any failure means: do not trust this kernel
        return f"{type(exc).__name__}: {exc}"
    return None


def _scale_to_numpy(scale):
    if scale is None:
        return None
    if hasattr(scale, "detach"):
        return scale.detach().cpu().double().numpy()
    return np.asarray(scale, dtype=np.float64)


def _numel(scale) -> int:
    return int(np.asarray(_scale_to_numpy(scale)).size)
