"""`lpq calibrate`: the command-line face of lpq.runs.calibrate.run_calibrate (calibration IDs and activation
statistics once per model; out_dir/calib.pt, calib.json)."""
from __future__ import annotations

from pathlib import Path


def run(cfg, out_dir: Path, overrides: list[str]) -> None:
    from ..runs.calibrate import run_calibrate

    run_calibrate(cfg, out_dir)
