"""Opt-in (pytest -m exhaustive): the CPU kernel equals the numpy reference on all 2^32
float32 bit patterns for a few formats (LP-FORMAT §9.4, last bullet). About 10 minutes per
format on 2 cores; not part of the default run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lpq.formats import parse

CHUNK = 1 << 26


@pytest.mark.exhaustive
@pytest.mark.parametrize("spec", ["lp<8,1,3,0>", "lp<4,1,2,0.5,underflow=flush>", "lp<16,1,4,-2.25>"])
def test_all_float32_patterns(spec):
    fmt = parse(spec)
    for start in range(0, 1 << 32, CHUNK):
        bits = np.arange(start, start + CHUNK, dtype=np.uint64).astype(np.uint32)
        x = bits.view(np.float32)
        ref = fmt.quantize(x)
        fast = fmt.quantize(torch.from_numpy(x)).numpy()
        nan = np.isnan(ref)
        assert np.array_equal(nan, np.isnan(fast)), f"NaN mismatch in chunk starting {start:#x}"
        mismatch = (ref.view(np.uint32) != fast.view(np.uint32)) & ~nan
        assert not mismatch.any(), f"first mismatch at pattern {int(bits[np.argmax(mismatch)]):#010x}"
