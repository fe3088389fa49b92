"""Shared §9.4 test inputs for the fast-path tests (LP-FORMAT §9.4)."""
from __future__ import annotations

import numpy as np


def threshold_neighbours(fmt, steps: int = 4) -> np.ndarray:
    """Every float32 threshold of fmt and `steps` float32 neighbours on each side (positive)."""
    thr = fmt.thresholds(np.float32)
    near = [thr]
    for direction in (np.inf, 0.0):
        step = thr
        for _ in range(steps):
            step = np.nextafter(step, np.float32(direction))
            near.append(step)
    return np.concatenate(near)


def stratified_sweep(seed: int = 0) -> np.ndarray:
    """Every upper-16-bit float32 prefix with low halves 0x0000, 0x0001, 0x7fff, 0x8000,
    0xffff and one seeded random value."""
    hi = np.arange(1 << 16, dtype=np.uint32) << 16
    rnd = np.random.default_rng(seed).integers(0, 1 << 16, dtype=np.uint32)
    lows = np.array([0x0000, 0x0001, 0x7FFF, 0x8000, 0xFFFF, rnd], dtype=np.uint32)
    return (hi[:, None] | lows[None, :]).ravel().view(np.float32)
