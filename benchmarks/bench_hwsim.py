"""Speed of the analytical hardware model (HWMODEL §2, §7.3) in layers per second.

Reports: `gemm_stats` on the 46 SCALE-Sim reference cases; a whole ResNet-50 (54 GEMMs, batch 64)
in `default28` (extraction and simulation timed separately); ResNet-18 at batch 64 in
`ant_compat` (tiling search) for ANT, BitFusion, AdaFloat and OLAccel. With SCALESIM_PYTHON
pointing at a venv with `scalesim` 3.0.0 (HWMODEL §2.7), it also times SCALE-Sim on the same 46
reference cases (tests/hwmodel/make_scalesim_refs.py) and prints the speed-up.

`--ant-networks` also runs ANT's eight networks (VGG16, ResNet-18, ResNet-50, InceptionV3, ViT-B/16,
BERT-base on MNLI / CoLA / SST-2 shapes, sequence length 128) in `ant_compat` at batch 64 and prints
time and energy vs AdaFloat and ANT over BitFusion (HWMODEL §9 V4 loose check; precisions from the
§7.1 rules, which are pinned for ResNet-18 only).

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


def _bert_records(num_classes: int):
    """BERT-base encoder shapes (12 layers, d 768, 12 heads, FFN 3072, pooler, classifier) at L = 128."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from hwmodel.extract import extract_gemms

    class Layer(nn.Module):
        def __init__(self, d: int = 768, heads: int = 12, ffn: int = 3072):
            super().__init__()
            self.heads = heads
            self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
            self.ffn1, self.ffn2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

        def forward(self, x):
            B, L, D = x.shape
            split = lambda t: t.view(B, L, self.heads, D // self.heads).transpose(1, 2)  # noqa: E731
            a = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
            x = x + self.out(a.transpose(1, 2).reshape(B, L, D))
            return x + self.ffn2(F.gelu(self.ffn1(x)))

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(*(Layer() for _ in range(12)))
            self.pooler, self.classifier = nn.Linear(768, 768), nn.Linear(768, num_classes)

        def forward(self, x):
            return self.classifier(torch.tanh(self.pooler(self.layers(x)[:, 0])))

    with torch.device("meta"):
        return extract_gemms(Bert(), (128, 768))


def ant_networks() -> None:
    """ANT's eight networks in ant_compat (batch 64): ratios vs AdaFloat and ANT over BitFusion."""
    import math

    from hwmodel.config import load_hw
    from hwmodel.precision import rule_precisions
    from hwmodel.simulate import simulate

    import timm
    import torch

    from hwmodel.extract import extract_gemms

    nets = {}
    for name, size in (("vgg16", 224), ("resnet18", 224), ("resnet50", 224), ("inception_v3", 299),
                       ("vit_base_patch16_224", 224)):
        with torch.device("meta"):
            nets[name] = extract_gemms(timm.create_model(name, pretrained=False), (3, size, size))
    for task, classes in (("bert_mnli", 3), ("bert_cola", 2), ("bert_sst2", 2)):
        nets[task] = _bert_records(classes)
    res = {}
    start = time.perf_counter()
    for design in ("ant", "bitfusion", "adafloat", "olaccel"):
        hw = load_hw(design, "ant_compat")
        for name, recs in nets.items():
            s = simulate(recs, rule_precisions(hw.design, recs, name), hw, name).summary
            res[design, name] = (s["cycles"]["total"], s["energy_pj"]["total"])
    n_layers = 4 * sum(len(r) for r in nets.values())
    print(f"ANT networks, ant_compat, batch 64: {n_layers} layer searches in {time.perf_counter() - start:.1f} s")

    def geo(values):
        return math.exp(sum(math.log(v) for v in values) / len(values))

    print(f"  {'':34}" + "".join(f"{n[:12]:>13}" for n in nets) + "   geomean")
    for design in ("ant", "bitfusion", "olaccel"):
        for k, label in ((0, "time"), (1, "energy")):
            vals = [res[design, n][k] / res["adafloat", n][k] for n in nets]
            print(f"  {design + ' ' + label + ' vs adafloat':34}" + "".join(f"{v:13.3f}" for v in vals) + f"   {geo(vals):.3f}")
    for k, label in ((0, "speed-up"), (1, "energy ratio")):
        vals = [res["bitfusion", n][k] / res["ant", n][k] for n in nets]
        print(f"  {'ANT over BitFusion ' + label:34}" + "".join(f"{v:13.2f}" for v in vals) + f"   {geo(vals):.2f}")


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
