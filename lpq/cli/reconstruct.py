"""`lpq reconstruct`: the command-line face of lpq.runs.reconstruct.run_reconstruct (learned rounding of a fixed
format assignment; out_dir/rounding.pt, reconstruct.json)."""
from __future__ import annotations

from pathlib import Path


def run(cfg, out_dir: Path, overrides: list[str]) -> None:
    from ..runs.reconstruct import run_reconstruct

    run_reconstruct(cfg, out_dir)
