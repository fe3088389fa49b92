"""Progress for long loops (PIPELINE §6): a tqdm bar on a terminal, otherwise plain log lines
at start, every 10 %, at least every 60 s and at the end. LPA_PROGRESS=bar|lines|off overrides."""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("lpq")


def _mode() -> str:
    mode = os.environ.get("LPA_PROGRESS", "").lower()
    if mode in ("bar", "lines", "off"):
        return mode
    return "bar" if sys.stderr.isatty() else "lines"


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate over items while reporting progress."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    mode = _mode()
    if mode == "bar":
        from tqdm import tqdm

        yield from tqdm(items, desc=desc, total=total, unit=unit, leave=False)
        return
    if mode == "off":
        yield from items
        return
    start = last = time.perf_counter()
    next_pct = 10
    log.info("%s: start (%s %s)", desc, total if total is not None else "?", unit)
    count = 0
    for item in items:
        yield item
        count += 1
        now = time.perf_counter()
        pct = 100 * count / total if total else 0
        if (total and pct >= next_pct) or now - last >= 60:
            rate = count / max(now - start, 1e-9)
            eta = (total - count) / rate if total else float("nan")
            log.info("%s: %d/%s %s (%.1f %s/s, eta %.0f s)", desc, count, total or "?", unit, rate, unit, eta)
            last = now
            while total and pct >= next_pct:
                next_pct += 10
    log.info("%s: done, %d %s in %.1f s", desc, count, unit, time.perf_counter() - start)
