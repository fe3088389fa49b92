"""Speed of the analytical hardware model (HWMODEL §2, §7.3) in layers per second.

Reports: `gemm_stats` on the 46 SCALE-Sim reference cases; a whole ResNet-50 (54 GEMMs, batch 64)
in `default28` (extraction and simulation timed separately); ResNet-18 at batch 64 in
`ant_compat` (tiling search) for ANT, BitFusion, AdaFloat and OLAccel. With SCALESIM_PYTHON
pointing at a venv with `scalesim` 3.0.0 (HWMODEL §2.7), it also times SCALE-Sim on the same 46
reference cases (tests/hwmodel/make_scalesim_refs.py) and prints the speed-up.

`--ant-networks` also runs ANT's eight networks (VGG16, ResNet-18, ResNet-50, InceptionV3, ViT-B/16,
BERT-base on MNLI / CoLA / SST-2, sequence length 128) in `ant_compat` at batch 64 with the artifact's
own layer lists and per-layer precisions (conf/hw/ant_networks.yaml) and prints time and energy vs
AdaFloat next to the artifact's published values, and ANT over BitFusion (HWMODEL §9 V4, V8).

    python benchmarks/bench_hwsim.py [--repeat 5] [--ant-networks]
    SCALESIM_PYTHON=/tmp/scalesim-venv/bin/python python benchmarks/bench_hwsim.py
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import tempfile
import time
from pathlib import Path
from timing import median_time  # benchmarks/timing.py (scripts run from any directory)

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "tests" / "hwmodel" / "data" / "scalesim_v3_reference.csv"
SCRIPT = ROOT / "tests" / "hwmodel" / "make_scalesim_refs.py"


def _reference_cases() -> list[tuple]:
    with open(REFS, newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    return [(int(r["M"]), int(r["N"]), int(r["K"]), int(r["rows"]), int(r["cols"]), r["dataflow"]) for r in rows]


def _timm_records(name: str):
    import timm
    import torch

    from hwmodel.extract import extract_gemms

    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    start = time.perf_counter()
    records = extract_gemms(model, (3, 224, 224))
    return records, time.perf_counter() - start


def ant_networks() -> None:
    """ANT's eight networks in ant_compat (batch 64) with the artifact's own layer lists and per-layer
    precisions (conf/hw/ant_networks.yaml): ratios vs AdaFloat next to the published ones, and ANT
    over BitFusion per network, as geomean and as the paper's ratio of mean ratios."""
    import math

    from hwmodel.ant_networks import load_ant_networks, published
    from hwmodel.config import load_hw
    from hwmodel.simulate import simulate

    nets, pub = load_ant_networks(), published()
    res = {}
    start = time.perf_counter()
    for design in ("ant", "bitfusion", "adafloat", "olaccel"):
        hw = load_hw(design, "ant_compat")
        for name, net in nets.items():
            s = simulate(*net.workload(hw.design), hw, name).summary
            res[design, name] = (s["cycles"]["total"], s["energy_pj"]["total"])
    n_layers = sum(len(net.workload(load_hw(d, "ant_compat").design)[0]) for d in ("ant", "bitfusion", "adafloat",
                                                                                     "olaccel") for net in nets.values())
    print(f"ANT networks (artifact lists), ant_compat, batch 64: {n_layers} layer searches in "
          f"{time.perf_counter() - start:.1f} s; (published) from ant_res.csv")

    def geo(values):
        return math.exp(sum(math.log(v) for v in values) / len(values))

    print(f"  {'':32}" + "".join(f"{n[:11]:>13}" for n in nets) + "       mean")
    for design in ("ant", "bitfusion", "olaccel"):
        for k, label in ((0, "time"), (1, "energy")):
            vals = [res[design, n][k] / res["adafloat", n][k] for n in nets]
            ref = pub[label][design]
            print(f"  {design + ' ' + label + ' vs adafloat':32}" + "".join(f"{v:7.3f}({r:.2f})" for v, r in zip(vals, ref))
                  + f"   {sum(vals) / len(vals):.3f}({sum(ref) / len(ref):.3f})")
    for k, label in ((0, "speed-up"), (1, "energy ratio")):
        vals = [res["bitfusion", n][k] / res["ant", n][k] for n in nets]
        means = [sum(res[d, n][k] / res["adafloat", n][k] for n in nets) for d in ("bitfusion", "ant")]
        print(f"  {'ANT over BitFusion ' + label:32}" + "".join(f"{v:13.2f}" for v in vals)
              + f"   geomean {geo(vals):.2f}, ratio of means {means[0] / means[1]:.2f}")


def main() -> None:
    from hwmodel.config import load_hw
    from hwmodel.precision import rule_precisions
    from hwmodel.simulate import simulate
    from hwmodel.systolic import gemm_stats

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ant-networks", action="store_true", help="also run ANT's eight networks in ant_compat")
    args = ap.parse_args()

    cases = _reference_cases()
    t_stats = median_time(lambda: [gemm_stats(*c) for c in cases], args.repeat)
    print(f"gemm_stats, {len(cases)} SCALE-Sim reference cases: {t_stats * 1e3:.3f} ms "
          f"({len(cases) / t_stats:,.0f} layers/s)")

    r50, t_extract = _timm_records("resnet50")
    hw = load_hw("lpa")
    prec = rule_precisions(hw.design, r50)
    t_r50 = median_time(lambda: simulate(r50, prec, hw, "resnet50"), args.repeat)
    print(f"ResNet-50 ({len(r50)} GEMMs, batch {hw.batch}) on lpa, default28: simulation {t_r50 * 1e3:.1f} ms "
          f"({len(r50) / t_r50:,.0f} layers/s); workload extraction on meta {t_extract * 1e3:.0f} ms")

    r18, _ = _timm_records("resnet18")
    for design in ("ant", "bitfusion", "adafloat", "olaccel"):
        h = load_hw(design, "ant_compat")
        p = rule_precisions(h.design, r18, "resnet18")
        t = median_time(lambda: simulate(r18, p, h, "resnet18"), max(1, args.repeat // 2))
        print(f"ResNet-18 ({len(r18)} GEMMs, batch {h.batch}) on {design}, ant_compat tiling search: {t:.3f} s "
              f"({len(r18) / t:,.0f} layers/s)")

    if args.ant_networks:
        ant_networks()
    scalesim_python = os.environ.get("SCALESIM_PYTHON")
    if not scalesim_python:
        print("SCALE-Sim comparison skipped: set SCALESIM_PYTHON to a venv interpreter with scalesim 3.0.0")
        return
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([scalesim_python, str(SCRIPT), str(Path(tmp) / "ref.csv")], check=True, capture_output=True)
        t_scalesim = time.perf_counter() - start
    print(f"SCALE-Sim 3.0.0 on the same {len(cases)} cases: {t_scalesim:.1f} s ({len(cases) / t_scalesim:.2f} layers/s); "
          f"gemm_stats is {t_scalesim / t_stats:,.0f}x faster")


if __name__ == "__main__":
    main()
