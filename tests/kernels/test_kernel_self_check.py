"""The start-up check that decides whether the CuPy kernel is trusted (lpq.kernels._cupy_ok):
it must accept a kernel that equals the torch-op kernel, and reject (with the reason) one that
differs in a single bit or raises, so an untested GPU set-up falls back instead of failing."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import lpq.kernels as K
from lpq.kernels import cpu, torch_native


def _numba_run(fmt, table, xf, r, s):
    out = np.empty(xf.numel(), dtype=np.float32)
    cpu.quantize_f32(table, xf.view(-1).numpy(), out, r, s, threads=1)
    return torch.from_numpy(out).view(xf.shape)


def test_an_equal_kernel_passes():
    assert K.kernel_disagreement(_numba_run, torch.device("cpu")) is None
    assert K.kernel_disagreement(lambda f, t, x, r, s: torch_native.quantize_f32(t, x, r, s), "cpu") is None


def test_one_wrong_bit_is_reported_with_the_input():
    def off_by_one(fmt, table, xf, r, s):
        out = torch_native.quantize_f32(table, xf, r, s)
        bits = out.view(torch.int32).clone()
        bits[3] ^= 1
        return bits.view(torch.float32)

    msg = K.kernel_disagreement(off_by_one, "cpu")
    assert msg is not None and msg.startswith("lp<4,1,2,0.5>: input") and "expected" in msg


def test_nan_payloads_are_not_a_disagreement():
    """Regression (first GPU run, H200): CUDA arithmetic on a NaN gives 0x7fffffff, the kernels write 0x7fc00000;
    the check rejected the CuPy kernel for that alone and every CUDA run fell back to the 12x slower torch-op
    kernel. A NaN of another payload passes; a NaN where a number is expected (and vice versa) does not."""
    def other_nan(fmt, table, xf, r, s):
        out = torch_native.quantize_f32(table, xf, r, s)
        bits = out.view(torch.int32).clone()
        bits[torch.isnan(out)] = 0x7FFFFFFF
        return bits.view(torch.float32)

    def nan_for_a_number(fmt, table, xf, r, s):
        out = torch_native.quantize_f32(table, xf, r, s).clone()
        out[0] = float("nan")
        return out

    assert K.kernel_disagreement(other_nan, "cpu") is None
    msg = K.kernel_disagreement(nan_for_a_number, "cpu")
    assert msg is not None and "expected" in msg


def test_a_raising_kernel_is_reported():
    def broken(*_):
        raise RuntimeError("nvrtc: cannot open libnvrtc")

    assert K.kernel_disagreement(broken, "cpu") == "RuntimeError: nvrtc: cannot open libnvrtc"


@pytest.mark.parametrize("problem,trusted", [(None, True), ("RuntimeError: no NVRTC", False)])
def test_cupy_is_used_only_after_the_check(monkeypatch, caplog, problem, trusted):
    from lpq.kernels import cuda

    monkeypatch.setattr(K, "_FORCE_TORCH", False)
    monkeypatch.setattr(cuda, "available", lambda: True)
    monkeypatch.setattr(K, "kernel_disagreement", lambda run, device: problem)
    K._cupy_ok.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="lpq"):
            assert K._cupy_ok() is trusted
        assert ("start-up check (RuntimeError: no NVRTC)" in caplog.text) is (not trusted)
    finally:
        K._cupy_ok.cache_clear()
