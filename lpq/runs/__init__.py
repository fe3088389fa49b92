"""The steps of a run, below the `lpq` command line (docs/api.md).

Explicit arguments, no Hydra (lpq.runs.steps, lpq.runs.search): `prepare` a module for fake quantization,
draw `calibration_batches`, collect `activation_statistics`, calibrate a uniform QConfig
(lpq.quant.ptq.uniform_qconfig) or `prepare_search` an LPQ search and take its `best_qconfig`, then `top1`.
Driven by a composed config (lpq.runs.from_config and the `run_<command>` functions): what the `lpq` commands
and the workflow's jobs call."""
from __future__ import annotations

from .steps import activation_statistics, calibration_batches, is_none, prepare, top1

__all__ = ["activation_statistics", "calibration_batches", "is_none", "prepare", "top1"]
