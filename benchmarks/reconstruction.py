"""Reconstruction benchmark on the pack's CIFAR-10 ResNets (docs/results.md, "4 bits with every option"): every
family at uniform W4A4 with the first and last layers at 8 bits (the BRECQ/QDrop convention), per-channel weights
and unsigned activations, with round-to-nearest and with learned rounding; top-1 on the test images, wall time.

    python benchmarks/reconstruction.py --weights ../shared/realmodels/resnet32-d509ac18.th \
        --data ../shared/realmodels/cifar10_jpeg [--model cifar_resnet32] [--formats 'lp<4,*,*,*>' int<4> fp4_e2m1] \
        [--mode brecq] [--iters 2000] [--max-samples N] [--out runs/recon-bench] [overrides ...]

Each cell is one `lpq evaluate` process (the command a user types), run one after the other with one thread; a
cell whose metrics.json already exists is read, not rerun (delete the folder to time it again). Prints a Markdown
table: format, round-to-nearest top-1, reconstructed top-1, the difference to FP32, and the reconstruction's wall
time. Extra arguments are Hydra overrides passed to every run (e.g. quant.recon.samples=512).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run_cell(out: Path, overrides: list[str]) -> tuple[float, float]:
    """(top-1, wall seconds) of one `lpq evaluate` into `out` (read back when it already ran)."""
    metrics = out / "metrics.json"
    if not metrics.is_file():
        env = {**os.environ, "OMP_NUM_THREADS": "1", "LPA_PROGRESS": os.environ.get("LPA_PROGRESS", "lines")}
        start = time.perf_counter()
        log = out.with_suffix(".log")
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as fh:
            rc = subprocess.call([sys.executable, "-m", "lpq", "evaluate", *overrides, f"out_dir={out}"], stdout=fh,
                                 stderr=subprocess.STDOUT, env=env)
        if rc != 0:
            raise SystemExit(f"lpq evaluate failed (exit {rc}); see {log}")
        wall = time.perf_counter() - start
    else:
        wall = float("nan")
    m = json.loads(metrics.read_text())
    return float(m["top1"]), float(m.get("seconds", wall))


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="model.checkpoint (e.g. resnet32-d509ac18.th)")
    ap.add_argument("--data", required=True, help="data.root of data=cifar10")
    ap.add_argument("--model", default="cifar_resnet32")
    ap.add_argument("--formats", nargs="+", default=["lp<4,*,*,*>", "int<4>", "fp4_e2m1"])
    ap.add_argument("--mode", default="brecq", choices=["adaround", "brecq", "qdrop"])
    ap.add_argument("--iters", type=int, default=2000, help="quant.recon.iters (steps per block)")
    ap.add_argument("--max-samples", type=int, default=None, help="eval.max_samples (default: every test image)")
    ap.add_argument("--out", default="runs/recon-bench")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    base = [f"model={args.model}", f"model.checkpoint={args.weights}", "data=cifar10", f"data.root={args.data}",
            *([f"eval.max_samples={args.max_samples}"] if args.max_samples else []), *args.overrides]
    root = Path(args.out) / args.model
    fp32, _ = run_cell(root / "fp32", base)
    print(f"| {args.model} (FP32 {fp32:.2f}) | round-to-nearest | {args.mode} ({args.iters} steps/block) | "
          f"Δ to FP32 | wall of {args.mode} |")
    print("|---|---|---|---|---|")
    for fmt in args.formats:
        q = [*base, f"quant.w_format={fmt}", f"quant.a_format={fmt}", "quant.pin_first_last=true",
             "quant.per_channel=true", "quant.unsigned_acts=auto"]
        rtn, _ = run_cell(root / f"{slug(fmt)}_rtn", q)
        rec, wall = run_cell(root / f"{slug(fmt)}_{args.mode}",
                             [*q, f"quant.reconstruct={args.mode}", f"quant.recon.iters={args.iters}"])
        print(f"| `{fmt}` | {rtn:.2f} | {rec:.2f} | {rec - fp32:+.2f} | {wall:.0f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
