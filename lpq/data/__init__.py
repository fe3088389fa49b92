"""Datasets: the embedded digits default and ImageNet-style folders, with a fixed
calibration subset that never overlaps the evaluation set (LPQ §6)."""
from .datasets import EvalData, build_data, calibration_subset, resolve_data_cfg

__all__ = ["EvalData", "build_data", "calibration_subset", "resolve_data_cfg"]
