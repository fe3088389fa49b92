"""Where the CIFAR-10 files of `data=cifar10 data.root=DIR` are (no torch import: the workflow's asset check
runs this at parse time, lpq.data.cifar10 reads the files)."""
from __future__ import annotations

from pathlib import Path

CALIB_SPLITS = ("auto", "calib", "train")


def _python_dir(root: Path) -> Path | None:
    for cand in (root, root / "cifar-10-batches-py"):
        if (cand / "test_batch").is_file():
            return cand
    return None


def locate(root_value, calib_split: str = "auto") -> tuple[str, Path, Path | None]:
    """('python', batches dir, None) or ('folder', test tree, calibration tree) for data.root, or a ValueError
    that says what was expected."""
    if root_value in (None, "", "???"):
        raise ValueError("data.root is not set: give the CIFAR-10 folder (cifar-10-batches-py, or test/ with "
                         "train/ or calib/ image folders)")
    if calib_split not in CALIB_SPLITS:
        raise ValueError(f"data.calib_split={calib_split!r} is invalid: need one of {', '.join(CALIB_SPLITS)}")
    root = Path(str(root_value)).expanduser()
    if not root.is_dir():
        raise ValueError(f"data.root={root_value} does not exist or is not a directory")
    py = _python_dir(root)
    if py is not None:
        return "python", py, None
    test = root / "test"
    choices = {"calib": root / "calib", "train": root / "train"}
    order = ["calib", "train"] if calib_split == "auto" else [calib_split]
    calib = next((choices[c] for c in order if choices[c].is_dir()), None)
    if test.is_dir() and calib is not None:
        return "folder", test, calib
    wanted = " or ".join(f"{c}/<class>/" for c in order)
    raise ValueError(
        f"data.root={root_value} is not a CIFAR-10 folder: expected either the python batches "
        f"(test_batch and data_batch_1 ... data_batch_5, directly or in cifar-10-batches-py/) or image folders "
        f"test/<class>/ with {wanted}; found "
        f"{', '.join(sorted(p.name for p in root.iterdir())[:8]) or 'an empty folder'}")
