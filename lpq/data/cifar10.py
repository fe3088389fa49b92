"""CIFAR-10 from a local folder (`data=cifar10 data.root=DIR`), never downloaded.

DIR is either the python version of CIFAR-10 (`cifar-10-batches-py/`, or the folder holding it:
`test_batch` is the evaluation set, `data_batch_1..5` the calibration pool) or ImageFolder trees
`DIR/test/<class>/<image>` with `DIR/calib/<class>/...` or `DIR/train/<class>/...` (calib wins when
both exist). Images stay 32x32 (no resize or crop); preprocessing is `ToTensor()` then `Normalize`
with data.mean/std, computed with the same float32 operations as torchvision so inputs are
bit-identical. Calibration images never come from the test set.
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch

from .cifar10_layout import locate

log = logging.getLogger("lpq")

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp")


class NormalizedImages(torch.utils.data.Dataset):
    """uint8 images [N, 3, 32, 32] in memory; item i = ((x / 255 - mean) / std, label) in float32."""

    def __init__(self, images: torch.Tensor, labels: list[int], mean, std):
        self.images = images
        self.targets = list(labels)
        self.mean = torch.as_tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.as_tensor(list(std), dtype=torch.float32).view(-1, 1, 1)
        self.classes = list(CLASSES)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        x = self.images[i].to(torch.float32).div(255)  # torchvision ToTensor
        return x.sub_(self.mean).div_(self.std), self.targets[i]  # torchvision Normalize


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = [int(v) for v in batch[b"labels"]]
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as err:
        raise ValueError(f"data.root: {path} is not a CIFAR-10 python batch ({type(err).__name__}: {err})") from None
    if len(labels) != len(data):
        raise ValueError(f"data.root: {path} has {len(data)} images but {len(labels)} labels")
    return {"images": torch.from_numpy(data.copy()), "labels": labels}


def _folder_label(name: str) -> int | None:
    if name in CLASSES:
        return CLASSES.index(name)
    return int(name) if name.isdigit() and int(name) < len(CLASSES) else None


def _read_tree(root: Path) -> tuple[torch.Tensor, list[int], list[str]]:
    """Decode every image of root/<class>/ (sorted, as ImageFolder) to uint8 [N, 3, 32, 32]."""
    from PIL import Image

    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    bad = [c for c in classes if _folder_label(c) is None]
    if not classes or bad:
        raise ValueError(f"data.root: {root} needs one folder per CIFAR-10 class named {', '.join(CLASSES)} "
                         f"(or 0 ... 9); found {', '.join(bad[:5]) if bad else 'no class folders'}")
    images, labels, ids = [], [], []
    for c in classes:
        files = sorted(p for p in (root / c).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        for f in files:
            try:
                with Image.open(f) as im:
                    arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
            except OSError as err:
                raise ValueError(f"data.root: cannot read image {f}: {err}") from None
            if arr.shape != (32, 32, 3):
                raise ValueError(f"data.root: {f} is {arr.shape[1]}x{arr.shape[0]}, CIFAR-10 images are 32x32 "
                                 "(no resizing is applied)")
            images.append(arr)
            labels.append(_folder_label(c))
            ids.append(f"{root.resolve()}/{f.relative_to(root)}")
    if not images:
        raise ValueError(f"data.root: {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy()), labels, ids


def _load(kind: str, test_root: str, calib_root: str | None):
    if kind == "python":
        d = Path(test_root)
        test = _unpickle(d / "test_batch")
        train_files = [d / f"data_batch_{i}" for i in range(1, 6) if (d / f"data_batch_{i}").is_file()]
        if not train_files:
            raise ValueError(f"data.root: {d} has test_batch but no data_batch_1 ... data_batch_5 "
                             "(the calibration pool comes from the training batches, never from the test set)")
        parts = [_unpickle(f) for f in train_files]
        calib_images = torch.cat([p["images"] for p in parts])
        calib_labels = [lab for p in parts for lab in p["labels"]]
        calib_ids = [f"{f.resolve()}:{i}" for f, p in zip(train_files, parts) for i in range(len(p["labels"]))]
        test_ids = [f"{(d / 'test_batch').resolve()}:{i}" for i in range(len(test["labels"]))]
        return (test["images"], test["labels"], test_ids), (calib_images, calib_labels, calib_ids)
    return _read_tree(Path(test_root)), _read_tree(Path(calib_root))


def build_cifar10(cfg):
    """EvalData for data=cifar10: test set for evaluation, training images (or calib/) as calibration pool."""
    from .datasets import EvalData

    kind, test_root, calib_root = locate(cfg.get("root"), str(cfg.get("calib_split", "auto")))
    (ti, tl, tids), (ci, cl, cids) = _load(kind, str(test_root), None if calib_root is None else str(calib_root))
    mean, std = list(cfg.get("mean")), list(cfg.get("std"))
    val = NormalizedImages(ti, tl, mean, std)
    calib = NormalizedImages(ci, cl, mean, std)
    source = f"cifar10:{kind}:{test_root}" + (f" calib:{calib_root}" if calib_root else "")
    log.info("CIFAR-10 (%s): %d test images from %s, calibration pool %d images from %s", kind, len(val), test_root,
             len(calib), calib_root or f"{test_root}/data_batch_*")
    preprocess = {"resize": None, "crop": None, "mean": mean, "std": std, "interpolation": None,
                  "preprocess_source": "data config"}
    return EvalData(val, calib, tids, cids, len(CLASSES), source, preprocess, "cifar10")
