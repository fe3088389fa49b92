"""Per-layer quantization error of uniform formats on a real network (the 4-bit diagnosis of docs/results.md).

    python benchmarks/diagnose_layers.py --model cifar_resnet32 --checkpoint ../shared/realmodels/resnet32-d509ac18.th \
        --data ../shared/realmodels/cifar10_jpeg --formats 'lp<4,*,*,*>' int<4> fp4_e2m1 [--unsigned-acts auto] [--csv F]

For every quantized layer and format: the relative MSE ||Q(x) - x||^2 / ||x||^2 of its weight (per tensor) and of
its input activation (on the calibration statistics, the same 256 images `lpq evaluate` calibrates on), the
share of activation values that land on the format's smallest magnitude (LP never underflows: tiny values go to
minpos instead of 0) and the share of zeros kept; then the mean over layers. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpq.config import compose  # noqa: E402
from lpq.quant.ptq import uniform_qconfig  # noqa: E402
from lpq.runs.from_config import build_quant_model, config_calibration_batches, search_statistics  # noqa: E402


def rel_mse(q: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((q.astype(np.float64) - x) ** 2) / max(np.sum(x.astype(np.float64) ** 2), 1e-30))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cifar_resnet32")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True, help="data.root of data=cifar10")
    ap.add_argument("--formats", nargs="+", default=["lp<4,*,*,*>", "int<4>", "fp4_e2m1"])
    ap.add_argument("--unsigned-acts", default="off", choices=["off", "auto"])
    ap.add_argument("--csv", help="also write the per-layer rows here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = compose([f"model={args.model}", f"model.checkpoint={args.checkpoint}", "data=cifar10",
                   f"data.root={args.data}"])
    data, loaded, qm = build_quant_model(cfg)
    batches, ids = config_calibration_batches(cfg, data)
    _, stats = search_statistics(cfg, qm, loaded.name, batches, ids)
    rows = []
    for fmt in args.formats:
        qc = uniform_qconfig(qm, stats, fmt, fmt, per_channel=False, unsigned_acts=args.unsigned_acts)
        qs = qc.quantizers()
        for unit in qm.units:
            wq, aq = qs[unit.name]
            w = qm.fp_weight(unit.name)
            x = stats[(unit.name, "a")]
            qa = aq(torch.from_numpy(x)).numpy()
            smallest = float(aq.fmt.min_positive) if aq.channel_sf is None else np.nan
            nz = x != 0
            rows.append({"format": fmt, "layer": unit.name, "w_spec": wq.spec, "a_spec": aq.spec,
                         "w_rel_mse": rel_mse(wq(w).numpy(), w.numpy()), "a_rel_mse": rel_mse(qa, x),
                         "a_at_minpos": float(np.mean(np.isclose(np.abs(qa[nz]), smallest, rtol=1e-6))) if nz.any() else 0.0,
                         "a_zeros_in": float(np.mean(~nz)), "a_zeros_out": float(np.mean(qa == 0))})
    print(f"{loaded.name}, unsigned_acts={args.unsigned_acts}: mean over {len(qm.units)} layers")
    print("| format | weight rel. MSE | activation rel. MSE | activations at minpos | zeros in -> out |")
    print("|---|---|---|---|---|")
    for fmt in args.formats:
        r = [x for x in rows if x["format"] == fmt]
        print(f"| `{fmt}` | {np.mean([x['w_rel_mse'] for x in r]):.4f} | {np.mean([x['a_rel_mse'] for x in r]):.4f} | "
              f"{np.mean([x['a_at_minpos'] for x in r]):.3f} | {np.mean([x['a_zeros_in'] for x in r]):.3f} -> "
              f"{np.mean([x['a_zeros_out'] for x in r]):.3f} |")
    print("\nworst layers (activation rel. MSE):")
    for fmt in args.formats:
        r = sorted((x for x in rows if x["format"] == fmt), key=lambda x: -x["a_rel_mse"])[:3]
        print(f"  {fmt}: " + "; ".join(f"{x['layer']} {x['a_rel_mse']:.3f} ({x['a_spec']})" for x in r))
    if args.csv:
        import csv

        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
