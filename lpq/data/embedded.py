"""The embedded default dataset: scikit-learn's handwritten digits (1,797 8x8 grey images,
10 classes), shipped inside scikit-learn, so nothing is downloaded.

Fixed split (documented in the README): a permutation of the 1,797 sample indices drawn with
numpy.random.default_rng(0); the first 1,097 are train, the next 300 calibration, the last 400
validation. Pixels 0..16 are mapped to [-1, 1] ((p / 8) - 1).
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import os

import numpy as np
import torch

SPLIT_SIZES = {"train": 1097, "calib": 300, "val": 400}
SPLIT_SEED = 0
NUM_CLASSES = 10
INPUT_SHAPE = (1, 8, 8)


class ArrayDataset(torch.utils.data.Dataset):
    """In-memory (image, label) pairs with stable sample IDs."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, ids: list[str]):
        self.images, self.labels, self.ids = images, labels, ids

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]


@functools.lru_cache(maxsize=None)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images [1797, 8, 8] float64 0..16, labels [1797]) read straight from scikit-learn's data file.

    Same values as ``sklearn.datasets.load_digits()`` (tested), without importing scikit-learn, whose
    import costs about 1.5 s in every workflow job.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded dataset needs scikit-learn installed (it ships the digits data file)")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    with gzip.open(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


@functools.lru_cache(maxsize=None)
def _split_indices() -> dict[str, np.ndarray]:
    total = sum(SPLIT_SIZES.values())
    perm = np.random.default_rng(SPLIT_SEED).permutation(total)
    out, start = {}, 0
    for name, size in SPLIT_SIZES.items():
        out[name] = np.sort(perm[start:start + size])
        start += size
    return out


def digits_split(split: str) -> ArrayDataset:
    """One split ('train', 'calib' or 'val') of the embedded digits dataset."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"split={split!r} is invalid: need one of {', '.join(SPLIT_SIZES)}")
    pixels, target = _digits_arrays()
    idx = _split_indices()[split]
    images = torch.from_numpy(pixels[idx].astype(np.float32) / 8.0 - 1.0).unsqueeze(1)
    labels = torch.from_numpy(target[idx].astype(np.int64))
    return ArrayDataset(images.contiguous(), labels, [f"digits/{i}" for i in idx])
