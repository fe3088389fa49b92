"""`lpq search`: the command-line face of lpq.runs.search.run_search (the LPQ genetic search, or `search=none`:
uniform calibrated PTQ; out_dir/qconfig.json, search_log.csv, search.json)."""
from __future__ import annotations

from pathlib import Path


def run(cfg, out_dir: Path, overrides: list[str]) -> None:
    from ..runs.search import run_search

    run_search(cfg, out_dir)
