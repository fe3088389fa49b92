"""Datasets: the embedded digits default, ImageNet-style folders and CIFAR-10, with a fixed
calibration subset that never overlaps the evaluation set (LPQ §6).

Names are imported lazily, so torch-free submodules (`lpq.data.cifar10_layout`) can be used at workflow
parse time without importing torch."""
from __future__ import annotations

__all__ = ["EvalData", "build_data", "calibration_subset", "resolve_data_cfg"]


def __getattr__(name: str):
    if name in __all__:
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'lpq.data' has no attribute {name!r}")
