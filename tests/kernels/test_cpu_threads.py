"""The numba kernels follow torch's intra-op thread count (lpq.kernels.cpu.use_threads): more numba workers than
torch threads spin and starve the process and concurrent jobs."""
from __future__ import annotations

import numba
import pytest
import torch

from lpq.formats import parse
from lpq.kernels.cpu import use_threads


@pytest.fixture
def restore_threads():
    torch_n, numba_n = torch.get_num_threads(), numba.get_num_threads()
    yield
    torch.set_num_threads(torch_n)
    numba.set_num_threads(numba_n)


def test_parallel_kernel_uses_torch_thread_count(restore_threads):
    x = torch.randn(1 << 16)  # above the serial threshold: the parallel kernel runs
    torch.set_num_threads(1)
    y1 = parse("lp<8,1,3,0>").quantize(x)
    assert numba.get_num_threads() == 1
    if numba.config.NUMBA_NUM_THREADS >= 2:
        torch.set_num_threads(2)
        y2 = parse("lp<8,1,3,0>").quantize(x)
        assert numba.get_num_threads() == 2
        assert torch.equal(y1, y2)  # thread count never changes results


def test_use_threads_caps_at_numba_pool(restore_threads):
    use_threads(10_000)
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    use_threads(0)
    assert numba.get_num_threads() == 1
