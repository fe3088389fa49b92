"""Regenerate tests/hwmodel/data/scalesim_v3_reference.csv with PyPI `scalesim` 3.0.0 (HWMODEL §2.7).

Runs only where scalesim is installed, in its own virtual environment (it needs numpy < 2.4):

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim==3.0.0 "numpy>=2.0.2,<2.4"
    /tmp/scalesim-venv/bin/python tests/hwmodel/make_scalesim_refs.py [OUT.csv]

The tests never import scalesim; they read the stored CSV. The project ships no SCALE-Sim code:
this script only writes SCALE-Sim input files, runs `python -m scalesim.scale` and parses its
report CSVs. Takes about a minute on 2 cores (scalesim always writes full traces).
"""
from __future__ import annotations

import csv
import math
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data" / "scalesim_v3_reference.csv"

GEMM_LAYERS = [("gemm_64_64_64", 64, 64, 64), ("gemm_100_50_30", 100, 50, 30), ("gemm_256_128_256", 256, 128, 256)]
# (name, H, W, R_f, S_f, C, N_f, stride): SCALE-Sim conv rows, no padding field (§2.6)
CONV_LAYERS = [("conv_8x8_c16_n32_s1", 8, 8, 3, 3, 16, 32, 1), ("conv_14x14_c32_n64_s2", 14, 14, 3, 3, 32, 64, 2)]
GOLDEN = ("alexnet_conv1", 224, 224, 11, 11, 3, 96, 4)  # SCALE-Sim's own golden test layer: 32x32 WS, 64 kB
ARRAYS = (8, 16, 32)
DATAFLOWS = ("os", "ws", "is")

COLUMNS = ["layer", "M", "N", "K", "rows", "cols", "dataflow", "sram_kb", "total_cycles",
           "total_cycles_incl_prefetch", "stall_cycles", "overall_util_pct", "mapping_eff_pct", "compute_util_pct",
           "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes", "dram_ifmap_reads", "dram_filter_reads",
           "dram_ofmap_writes", "conv_H", "conv_W", "conv_R", "conv_S", "conv_C", "conv_N", "conv_stride"]

LAYOUT_HEADER = ("Layer name,IFMAP Height Intraline Factor,IFMAP Width Intraline Factor,Filter Height Intraline Factor,"
                 "Filter Width Intraline Factor,Channel Intraline Factor,Num Filter Intraline Factor,"
                 "IFMAP Height Intraline Order,IFMAP Width Intraline Order,Channel Intraline Order,"
                 "IFMAP Height Interline Order,IFMAP Width Interline Order,Channel Interline Order,"
                 "Num Filter Intraline Order,Channel Intraline Order,Filter Height Intraline Order,"
                 "Filter Width Intraline Order,Num Filter Interline Order,Channel Interline Order,"
                 "Filter Height Interline Order,Filter Width Interline Order,\n")
LAYOUT_ROW = "layer0,1,1,1,1,1,1,0,1,2,0,1,2,0,1,2,3,0,1,2,3,\n"  # ignored with custom layouts off


def config_text(run_name: str, array: int, dataflow: str, sram_kb: int) -> str:
    """SCALE-Sim INI per §2.7 step 2 (CALC bandwidth mode: no memory stalls)."""
    return f"""[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight : {array}
ArrayWidth : {array}
IfmapSramSzkB : {sram_kb}
FilterSramSzkB : {sram_kb}
OfmapSramSzkB : {sram_kb}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : 10
Dataflow : {dataflow}
MemoryBanks : 1
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 10
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 10
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : CALC
UseRamulatorTrace : False
"""


def conv_mnk(H: int, W: int, R: int, S: int, C: int, N: int, stride: int) -> tuple[int, int, int]:
    """SCALE-Sim's conv lowering: ceil((H - R + stride) / stride) output rows (§2.6)."""
    E = math.ceil((H - R + stride) / stride)
    F = math.ceil((W - S + stride) / stride)
    return E * F, N, R * S * C


def read_report(path: Path) -> list[list[str]]:
    with open(path) as fh:
        rows = [[c.strip() for c in line.split(",")] for line in fh if line.strip()]
    return rows[1:]


def run(work: Path, run_name: str, array: int, dataflow: str, sram_kb: int, layers: list, kind: str) -> list[dict]:
    cfg = work / f"{run_name}.cfg"
    cfg.write_text(config_text(run_name, array, dataflow, sram_kb))
    topo = work / f"{run_name}_topo.csv"
    if kind == "gemm":
        topo.write_text("Layer Name, M, N, K,\n" + "".join(f"{n}, {m}, {nn}, {k},\n" for n, m, nn, k in layers))
    else:
        topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                        + "".join(",".join(str(v) for v in layer) + ",\n" for layer in layers))
    layout = work / f"{run_name}_layout.csv"
    layout.write_text(LAYOUT_HEADER + LAYOUT_ROW)
    outdir = work / "out"
    proc = subprocess.run([sys.executable, "-m", "scalesim.scale", "-c", str(cfg), "-t", str(topo), "-l", str(layout),
                           "-p", str(outdir), "-i", kind], capture_output=True, text=True, cwd=work)
    if proc.returncode != 0:
        raise SystemExit(f"scalesim failed on {run_name}:\n{proc.stderr[-4000:]}")
    compute = read_report(outdir / run_name / "COMPUTE_REPORT.csv")
    access = read_report(outdir / run_name / "DETAILED_ACCESS_REPORT.csv")
    out = []
    for layer, c, a in zip(layers, compute, access, strict=True):
        if kind == "gemm":
            name, M, N, K = layer
            geo = {}
        else:
            name, H, W, R, S, C, Nf, stride = layer
            M, N, K = conv_mnk(H, W, R, S, C, Nf, stride)
            geo = {"conv_H": H, "conv_W": W, "conv_R": R, "conv_S": S, "conv_C": C, "conv_N": Nf, "conv_stride": stride}
        out.append({
            "layer": name, "M": M, "N": N, "K": K, "rows": array, "cols": array, "dataflow": dataflow,
            "sram_kb": sram_kb, "total_cycles_incl_prefetch": int(c[1]), "total_cycles": int(c[2]),
            "stall_cycles": int(c[3]), "overall_util_pct": float(c[4]), "mapping_eff_pct": float(c[5]),
            "compute_util_pct": float(c[6]), "sram_ifmap_reads": int(a[3]), "sram_filter_reads": int(a[6]),
            "sram_ofmap_writes": int(a[9]), "dram_ifmap_reads": int(a[12]), "dram_filter_reads": int(a[15]),
            "dram_ofmap_writes": int(a[18]), **geo,
        })
    return out


def main(out_path: Path) -> None:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="scalesim-refs-") as tmp:
        work = Path(tmp)
        for array in ARRAYS:
            for df in DATAFLOWS:
                rows += run(work, f"gemm_a{array}_{df}", array, df, 1024, GEMM_LAYERS, "gemm")
                rows += run(work, f"conv_a{array}_{df}", array, df, 1024, CONV_LAYERS, "conv")
        rows += run(work, "golden_alexnet", 32, "ws", 64, [GOLDEN], "conv")
    versions = f"scalesim {metadata.version('scalesim')}, numpy {metadata.version('numpy')}"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", newline="") as fh:
        fh.write(f"# SCALE-Sim v3 reference values ({versions}); CALC mode; generated by "
                 f"tests/hwmodel/make_scalesim_refs.py (HWMODEL §2.7)\n")
        writer = csv.DictWriter(fh, COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in COLUMNS})
    print(f"wrote {len(rows)} rows to {out_path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
