"""hwmodel tests: quiet progress; the `scalesim` marker (regeneration against an external venv)."""
from __future__ import annotations

import os

os.environ.setdefault("LPA_PROGRESS", "off")


def pytest_configure(config):
    config.addinivalue_line("markers", "scalesim: regenerates the SCALE-Sim reference (needs $SCALESIM_PYTHON)")
