"""Quantization MSE of many candidate grids at once, without quantizing element by element.

|x| is sorted once per row (a tensor, or one output channel) with prefix sums of |x| and x²;
a candidate grid (magnitudes v_0 < … < v_{M-1}, decision thresholds θ_1 … θ_{M-1}) splits the
sorted values into M segments found by one `numpy.searchsorted` of its thresholds, and segment
j contributes S2 − 2·v_j·S1 + v_j²·count. Cost per candidate: O(M log L) instead of O(L), so
calibrating a ResNet takes seconds. Thresholds and values are float64 approximations (no
float32 rounding of scales): this ranks candidates; callers confirm the best few exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SortedMagnitudes:
    """Per row: sorted nonzero finite |x| and prefix sums (float64)."""

    values: list[np.ndarray]
    prefix1: list[np.ndarray]
    prefix2: list[np.ndarray]
    totals: np.ndarray  # all elements per row (zeros quantize exactly and add no error)

    @property
    def rows(self) -> int:
        return len(self.values)

    def median_log2(self) -> np.ndarray:
        """median(log2|x|) over the nonzero elements of each row (0 for an all-zero row)."""
        return np.array([
            float(np.log2(v[(v.size - 1) // 2]) + np.log2(v[v.size // 2])) / 2 if v.size else 0.0 for v in self.values
        ])

    def peak(self) -> np.ndarray:
        return np.array([float(v[-1]) if v.size else 0.0 for v in self.values])


def sort_magnitudes(rows) -> SortedMagnitudes:
    """Prepare one row per tensor (a 1-D array) or per channel (a list of arrays)."""
    if isinstance(rows, np.ndarray) and rows.ndim <= 1:
        rows = [rows]
    vals, p1, p2, totals = [], [], [], []
    for r in rows:
        m = np.abs(np.asarray(r, dtype=np.float64).ravel())
        totals.append(m.size)
        m = np.sort(m[(m > 0) & np.isfinite(m)])
        vals.append(m)
        p1.append(np.concatenate([[0.0], np.cumsum(m)]))
        p2.append(np.concatenate([[0.0], np.cumsum(m * m)]))
    return SortedMagnitudes(vals, p1, p2, np.asarray(totals, dtype=np.float64))


def grid_mse(data: SortedMagnitudes, values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Mean squared quantization error of K candidate grids on every row.

    values: [R or 1, K, M] magnitudes; thresholds: [R or 1, K, M-1] (θ_j = smallest |x| that
    maps to index ≥ j). Returns [R, K]."""
    values = np.asarray(values, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    R = data.rows
    K, M = values.shape[1], values.shape[2]
    out = np.empty((R, K))
    for r in range(R):
        v = values[r if values.shape[0] > 1 else 0]
        t = thresholds[r if thresholds.shape[0] > 1 else 0]
        count = data.values[r].size
        pos = np.searchsorted(data.values[r], t.ravel(), side="left").reshape(K, M - 1)
        bounds = np.concatenate([np.zeros((K, 1), np.int64), pos, np.full((K, 1), count)], axis=1)
        s1 = np.diff(data.prefix1[r][bounds], axis=1)
        s2 = np.diff(data.prefix2[r][bounds], axis=1)
        n = np.diff(bounds, axis=1)
        err = (s2 - 2 * v * s1 + v * v * n).sum(axis=1)
        out[r] = np.maximum(err, 0.0) / max(data.totals[r], 1.0)
    return out
