"""`lpq hwsim`: the command-line face of lpq.runs.hwsim.run_hwsim (one model on one accelerator design;
out_dir/layers.csv, summary.json, comparison.png)."""
from __future__ import annotations

from pathlib import Path


def run(cfg, out_dir: Path, overrides: list[str]) -> None:
    from ..runs.hwsim import run_hwsim

    run_hwsim(cfg, out_dir, overrides)
