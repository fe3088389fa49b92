"""Quantization MSE of many candidate grids at once, without quantizing element by element.

|x| is sorted once per tensor (or per channel) with prefix sums of |x| and x²; a candidate
grid (magnitudes v_0 < … < v_{M-1}, decision thresholds θ_1 … θ_{M-1}) splits the sorted
values into M segments found by `torch.searchsorted`, and segment j contributes
S2 − 2·v_j·S1 + v_j²·count. All candidates (and all channels) go through one batched call, so
calibrating a ResNet-sized network takes seconds. Thresholds here are float64 approximations:
this ranks candidates; the chosen format is then applied exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class SortedMagnitudes:
    """Per-row sorted nonzero |x| (padded with +inf) and prefix sums, float64."""

    values: torch.Tensor  # [R, L]
    prefix1: torch.Tensor  # [R, L+1]
    prefix2: torch.Tensor  # [R, L+1]
    counts: torch.Tensor  # [R] nonzero elements per row
    totals: torch.Tensor  # [R] all elements per row (zeros included: they quantize exactly)


def sort_magnitudes(rows: list[np.ndarray] | np.ndarray) -> SortedMagnitudes:
    """Prepare one row per tensor (or per channel) for `grid_mse`."""
    if isinstance(rows, np.ndarray) and rows.ndim == 1:
        rows = [rows]
    mags = [np.abs(np.asarray(r, dtype=np.float64).ravel()) for r in rows]
    totals = [m.size for m in mags]
    mags = [np.sort(m[(m > 0) & np.isfinite(m)]) for m in mags]
    length = max(1, max(m.size for m in mags))
    vals = np.full((len(mags), length), np.inf)
    for i, m in enumerate(mags):
        vals[i, : m.size] = m
    finite = np.where(np.isfinite(vals), vals, 0.0)
    zeros = np.zeros((len(mags), 1))
    p1 = np.concatenate([zeros, np.cumsum(finite, axis=1)], axis=1)
    p2 = np.concatenate([zeros, np.cumsum(finite * finite, axis=1)], axis=1)
    return SortedMagnitudes(
        torch.from_numpy(vals), torch.from_numpy(p1), torch.from_numpy(p2),
        torch.tensor([m.size for m in mags]), torch.tensor(totals),
    )


def grid_mse(data: SortedMagnitudes, values: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Mean squared quantization error of every candidate grid on every row.

    values: [R or 1, K, M] magnitudes; thresholds: [R or 1, K, M-1] (θ_j = smallest |x| that
    maps to index ≥ j). Returns [R, K]."""
    R = data.values.shape[0]
    values = values.expand(R, -1, -1).to(torch.float64)
    thresholds = thresholds.expand(R, -1, -1).to(torch.float64)
    K, M = values.shape[1], values.shape[2]
    pos = torch.searchsorted(data.values, thresholds.reshape(R, K * (M - 1)).contiguous(), side="left")
    pos = torch.minimum(pos, data.counts.view(R, 1)).reshape(R, K, M - 1)
    start = torch.zeros(R, K, 1, dtype=pos.dtype)
    end = data.counts.view(R, 1, 1).expand(R, K, 1)
    bounds = torch.cat([start, pos, end], dim=2)  # [R, K, M+1]
    p1 = torch.gather(data.prefix1.unsqueeze(1).expand(R, K, -1), 2, bounds)
    p2 = torch.gather(data.prefix2.unsqueeze(1).expand(R, K, -1), 2, bounds)
    n = (bounds[..., 1:] - bounds[..., :-1]).to(torch.float64)
    s1 = p1[..., 1:] - p1[..., :-1]
    s2 = p2[..., 1:] - p2[..., :-1]
    err = (s2 - 2 * values * s1 + values * values * n).sum(dim=2)
    return err.clamp_min(0) / data.totals.view(R, 1).to(torch.float64).clamp_min(1)
