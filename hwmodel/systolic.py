"""Systolic-array timing and SCALE-Sim access counts in closed form (HWMODEL §2).

`gemm_stats` reproduces PyPI `scalesim` 3.0.0 in CALC mode (stall-free) bit-exactly: cycles
(§2.3, quirks T1/T2), utilisations (§2.4, quirk T3) and the six access counts of §2.5 (quirks
Q1/Q2). Written from the spec's formulas; no SCALE-Sim code is used or imported.
"""
from __future__ import annotations

from dataclasses import dataclass

DATAFLOWS = ("os", "ws", "is")


def ceil_div(a: int, b: int) -> int:
    """⌈a/b⌉ on non-negative integers."""
    return -(-a // b)


def check_dataflow(dataflow: str) -> str:
    df = str(dataflow).lower()
    if df not in DATAFLOWS:
        raise ValueError(f"dataflow={dataflow!r} is invalid: need one of {', '.join(DATAFLOWS)}")
    return df


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} is invalid: need a positive integer")


@dataclass(frozen=True)
class Mapping:
    """Spatial rows Sr, spatial columns Sc and streamed dimension T of a GEMM (§2.1)."""

    Sr: int
    Sc: int
    T: int

    @classmethod
    def of(cls, M: int, N: int, K: int, dataflow: str) -> "Mapping":
        df = check_dataflow(dataflow)
        if df == "os":
            return cls(M, N, K)
        if df == "ws":
            return cls(K, N, M)
        return cls(K, M, N)


def folds(M: int, N: int, K: int, rows: int, cols: int, dataflow: str) -> tuple[int, int]:
    """(F_r, F_c): row and column folds (§2.2)."""
    m = Mapping.of(M, N, K, dataflow)
    return ceil_div(m.Sr, rows), ceil_div(m.Sc, cols)


def fold_length(M: int, N: int, K: int, rows: int, cols: int, dataflow: str) -> int:
    """Cycles of one fold L (§2.3): OS T + R + C − 2; WS/IS 2R + C + T − 2."""
    df = check_dataflow(dataflow)
    T = Mapping.of(M, N, K, df).T
    return T + rows + cols - 2 if df == "os" else 2 * rows + cols + T - 2


def gemm_cycles(M: int, N: int, K: int, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim `Total Cycles` of one GEMM: F·L − 1 (§2.3, quirks T1, T2)."""
    fr, fc = folds(M, N, K, rows, cols, dataflow)
    return fr * fc * fold_length(M, N, K, rows, cols, dataflow) - 1


def gemm_stats(M: int, N: int, K: int, rows: int, cols: int, dataflow: str, *,
               ifmap_unique: int | None = None) -> dict:
    """Stall-free SCALE-Sim v3 results of one GEMM (ifmap M×K, filter K×N) on a rows×cols array.

    Returns `cycles`, `util` (= `overall_util_pct`), `mapping_eff_pct`, `compute_util_pct`
    (§2.4), the SRAM and DRAM word counts of §2.5 in `accounting: scalesim` (DRAM counts assume
    every operand fits its SRAM), `folds_row`, `folds_col` and `fold_cycles`. `ifmap_unique`
    is the number of distinct ifmap elements (H·W·C for a conv row; default M·K).
    """
    _check_positive(M=M, N=N, K=K, rows=rows, cols=cols)
    df = check_dataflow(dataflow)
    R, C = rows, cols
    m = Mapping.of(M, N, K, df)
    fr, fc = ceil_div(m.Sr, R), ceil_div(m.Sc, C)
    F = fr * fc
    L = fold_length(M, N, K, R, C, df)
    cycles = F * L - 1
    macs = M * N * K
    # §2.4: used rows/cols summed over folds are Sr and Sc, so the fold means factorise.
    l_compute = m.T + R + C - 2 if df == "os" else 2 * R + 2 * C + m.T - 3  # quirk T3
    overall = 100.0 * macs / (cycles * R * C)
    mapping = 100.0 * (m.Sr * m.Sc) / (F * R * C)
    compute = 100.0 * (m.Sr * m.Sc * m.T) / (F * R * C * l_compute)
    if df == "os":
        sram_if, sram_fl = ceil_div(N, C) * M * K, ceil_div(M, R) * K * N
        sram_of = M * N + F * (R + C)  # quirk Q1
        dram_of = M * N
    elif df == "ws":
        sram_if, sram_fl = ceil_div(N, C) * M * K, K * N
        sram_of = dram_of = ceil_div(K, R) * M * N  # quirk Q2
    else:
        sram_if, sram_fl = K * M, ceil_div(M, C) * K * N
        sram_of = dram_of = ceil_div(K, R) * M * N  # quirk Q2
    return {
        "cycles": cycles, "util": overall, "overall_util_pct": overall, "mapping_eff_pct": mapping,
        "compute_util_pct": compute, "folds_row": fr, "folds_col": fc, "fold_cycles": L, "macs": macs,
        "sram_ifmap_reads": sram_if, "sram_filter_reads": sram_fl, "sram_ofmap_writes": sram_of,
        "dram_ifmap_reads": M * K if ifmap_unique is None else ifmap_unique, "dram_filter_reads": K * N,
        "dram_ofmap_writes": dram_of,
    }
