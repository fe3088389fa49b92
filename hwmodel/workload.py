"""GEMM records of a network and their file forms (HWMODEL §1.1, §1.3 step 5, §2.6).

A record describes one executed GEMM-like operation at a batch (extraction stores batch 1);
`at_batch` scales it with the record's `batch_axis`. Files: `gemms.csv` (one row per record,
conv geometry flattened) and SCALE-Sim topology CSVs (GEMM rows out; GEMM and conv rows in).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from pathlib import Path

OPS = ("conv", "linear", "attn_qk", "attn_av", "matmul")
BATCH_AXES = ("M", "count")
CONV_FIELDS = ("H", "W", "C_in", "KH", "KW", "stride", "pad", "OH", "OW", "groups")
CSV_COLUMNS = ("name", "op", "M", "N", "K", "count", "batch_axis", "u_a", "batch") + CONV_FIELDS


@dataclass(frozen=True)
class ConvGeom:
    """Convolution geometry of a conv record (per group: C_in is the full input channels)."""

    H: int
    W: int
    C_in: int
    KH: int
    KW: int
    stride: int
    pad: int | str
    OH: int
    OW: int
    groups: int


@dataclass(frozen=True)
class GemmRecord:
    """One GEMM-like operation (§1.1): ifmap M×K times filter K×N, `count` times."""

    name: str
    op: str
    M: int
    N: int
    K: int
    count: int = 1
    batch_axis: str = "M"
    u_a: int = 0  # unique ifmap elements per GEMM (0 → M·K)
    conv: ConvGeom | None = None
    batch: int = 1

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"op={self.op!r} of record {self.name!r} is invalid: need one of {', '.join(OPS)}")
        if self.batch_axis not in BATCH_AXES:
            raise ValueError(f"batch_axis={self.batch_axis!r} of record {self.name!r} is invalid: need M or count")
        for key in ("M", "N", "K", "count", "batch"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}={value!r} of record {self.name!r} is invalid: need a positive integer")
        if self.u_a == 0:
            object.__setattr__(self, "u_a", self.M * self.K)

    @property
    def macs(self) -> int:
        """count·M·N·K (§1.1)."""
        return self.count * self.M * self.N * self.K

    def at_batch(self, batch: int) -> "GemmRecord":
        """This batch-1 record at batch B: M·B (and u_a·B) or count·B by `batch_axis` (§1.1)."""
        if self.batch != 1:
            raise ValueError(f"record {self.name!r} is already at batch {self.batch}; scale batch-1 records only")
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch={batch!r} is invalid: need a positive integer")
        if self.batch_axis == "M":
            return replace(self, M=self.M * batch, u_a=self.u_a * batch, batch=batch)
        return replace(self, count=self.count * batch, batch=batch)


def total_macs(records) -> int:
    return sum(r.macs for r in records)


# ---- gemms.csv ------------------------------------------------------------------------------

def _csv_value(value) -> str:
    return "" if value is None else str(value)


def records_to_rows(records) -> list[list[str]]:
    """Rows of gemms.csv (header `CSV_COLUMNS`), conv fields empty when absent."""
    rows = []
    for r in records:
        geo = [getattr(r.conv, f) if r.conv else None for f in CONV_FIELDS]
        rows.append([_csv_value(v) for v in (r.name, r.op, r.M, r.N, r.K, r.count, r.batch_axis, r.u_a, r.batch, *geo)])
    return rows


def records_to_csv(records) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(records_to_rows(records))
    return buf.getvalue()


def _int_or_text(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def read_gemms_csv(path: str | Path) -> list[GemmRecord]:
    """Records from a gemms.csv written by `records_to_csv`."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(CSV_COLUMNS[:8]) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a gemms.csv (missing columns {sorted(missing)})")
        out = []
        for row in reader:
            geo = None
            if row.get("H"):
                geo = ConvGeom(**{f: _int_or_text(row[f]) for f in CONV_FIELDS})
            out.append(GemmRecord(row["name"], row["op"], int(row["M"]), int(row["N"]), int(row["K"]), int(row["count"]),
                                  row["batch_axis"], int(row["u_a"]), geo, int(row.get("batch") or 1)))
    return out


# ---- SCALE-Sim topologies (§1.3 importers/exporter, §2.6) -----------------------------------

def to_scalesim_gemm_topology(records) -> str:
    """SCALE-Sim GEMM topology CSV: `name, M, N, K,` rows, one per executed GEMM (count expanded)."""
    lines = ["Layer Name, M, N, K,"]
    for r in records:
        for i in range(r.count):
            suffix = f"_{i}" if r.count > 1 else ""
            lines.append(f"{r.name}{suffix}, {r.M}, {r.N}, {r.K},")
    return "\n".join(lines) + "\n"


def _topology_rows(text: str) -> list[list[str]]:
    rows = []
    for i, line in enumerate(text.splitlines()):
        line = line.strip()
        if i == 0 or not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        if cells and cells[-1] == "":
            cells = cells[:-1]
        rows.append(cells)
    return rows


def from_scalesim_gemm_topology(text: str) -> list[GemmRecord]:
    """Records from SCALE-Sim GEMM rows `(name, M, N, K)`; op `matmul`, count 1."""
    return [GemmRecord(c[0], "matmul", int(c[1]), int(c[2]), int(c[3])) for c in _topology_rows(text)]


def scalesim_conv_record(name: str, H: int, W: int, R: int, S: int, C: int, N: int, stride: int) -> GemmRecord:
    """A SCALE-Sim conv row lowered with its own output rule E = ⌈(H − R + stride)/stride⌉ (§2.6)."""
    E = math.ceil((H - R + stride) / stride)
    F = math.ceil((W - S + stride) / stride)
    geo = ConvGeom(H, W, C, R, S, stride, 0, E, F, 1)
    return GemmRecord(name, "conv", E * F, N, R * S * C, 1, "M", H * W * C, geo)


def from_scalesim_conv_topology(text: str) -> list[GemmRecord]:
    """Records from SCALE-Sim conv rows `(name, H, W, R, S, C, N, stride)`."""
    return [scalesim_conv_record(c[0], *(int(v) for v in c[1:8])) for c in _topology_rows(text)]
