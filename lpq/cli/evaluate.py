"""`lpq evaluate`: the command-line face of lpq.runs.evaluate.run_evaluate (calibrate if needed, fake-quantize,
evaluate; out_dir/metrics.json, qconfig.json, predictions.csv)."""
from __future__ import annotations

from pathlib import Path


def run(cfg, out_dir: Path, overrides: list[str]) -> None:
    from ..runs.evaluate import run_evaluate

    run_evaluate(cfg, out_dir)
