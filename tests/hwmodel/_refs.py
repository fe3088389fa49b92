"""Shared readers for the stored reference data (tests only read it; HWMODEL §2.7)."""
from __future__ import annotations

import csv
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
SCALESIM_CSV = DATA / "scalesim_v3_reference.csv"


def scalesim_rows(path: Path = SCALESIM_CSV) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))
