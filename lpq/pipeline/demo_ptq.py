"""Uniform PTQ on the embedded models: python -m lpq.pipeline.demo_ptq [OUT_DIR]

Trains digits_cnn and digits_vit if their checkpoints are missing, evaluates FP32 and uniform
calibrated formats (weights and activations) with `lpq evaluate`, and prints a Markdown table
of top-1 accuracy. Offline; a few minutes on 2 CPU cores. Each run's files stay in OUT_DIR.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..cli import main as lpq_main

MODELS = ("digits_cnn", "digits_vit")
FORMATS = ("none", "lp<8,*,*,*>", "int<8>", "fp8_e4m3", "lp<4,*,*,*>", "int<4>", "fp4_e2m1", "posit<4,1>")


def _dir_name(fmt: str) -> str:
    """Path-safe directory name of a format template (`*` -> x)."""
    return fmt.replace("<", "_").replace(",", "_").replace(">", "").replace("*", "x")


def _run(args: list[str]) -> None:
    code = lpq_main(args)
    if code != 0:
        raise SystemExit(f"lpq {' '.join(args)} failed with exit code {code}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "results/demo-ptq")
    rows = {}
    for model in MODELS:
        ckpt = out / model / "model.pt"
        if not ckpt.is_file():
            _run(["train", f"model={model}", f"out_dir={out / model}"])
        for fmt in FORMATS:
            run_dir = out / model / ("fp32" if fmt == "none" else _dir_name(fmt))
            if not (run_dir / "metrics.json").is_file():
                _run(["evaluate", f"model={model}", f"model.checkpoint={ckpt}", f"quant.w_format={fmt}",
                      f"quant.a_format={fmt}", f"out_dir={run_dir}"])
            rows[(model, fmt)] = json.loads((run_dir / "metrics.json").read_text())["top1"]
    header = "| W/A format | " + " | ".join(MODELS) + " |"
    lines = [header, "|---|" + "---|" * len(MODELS)]
    for fmt in FORMATS:
        label = "FP32" if fmt == "none" else f"`{fmt}`"
        lines.append(f"| {label} | " + " | ".join(f"{rows[(m, fmt)]:.2f}" for m in MODELS) + " |")
    print("\nTop-1 (%) on the embedded digits validation split (400 images):\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
