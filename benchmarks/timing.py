"""Shared timing helper of the benchmark scripts."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_time(fn: Callable[[], object], repeat: int, sync: Callable[[], object] = lambda: None) -> float:
    """Median wall time of `repeat` calls of fn (after one warm-up call), in seconds; `sync`
    waits for asynchronous devices before each clock read."""
    fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
