"""Build evaluation and calibration data from the `data` config group."""
from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .embedded import digits_split

log = logging.getLogger("lpq")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".JPEG")


@dataclass
class EvalData:
    """Validation and calibration datasets with their sample IDs and provenance."""

    val: torch.utils.data.Dataset
    calib: torch.utils.data.Dataset
    val_ids: list[str]
    calib_ids: list[str]
    num_classes: int | None
    source: str
    preprocess: dict | None = None  # image preprocessing actually applied (imagefolder)
    labels: str | None = None  # how validation folder names became class indices (imagefolder)


def _check_root(root: Any, key: str) -> Path:
    if root in (None, "", "???"):
        raise ValueError(f"{key} is not set: give the path of an ImageNet-style folder (one sub-folder per class)")
    path = Path(str(root)).expanduser()
    if not path.is_dir():
        raise ValueError(f"{key}={root} does not exist or is not a directory")
    classes = sorted(d.name for d in path.iterdir() if d.is_dir())
    if not classes:
        raise ValueError(f"{key}={root} has no class sub-folders (expected <root>/<class>/<image>)")
    def has_image(c: str) -> bool:
        return any(f.suffix.lower() in IMAGE_EXTENSIONS for f in (path / c).rglob("*") if f.is_file())

    empty = [c for c in classes if not has_image(c)]
    if len(empty) == len(classes):
        raise ValueError(f"{key}={root} contains no images in its class folders")
    if empty:
        raise ValueError(f"{key}={root}: class folder(s) without images: {', '.join(empty[:5])}")
    return path


ROUNDING = ("torchvision", "round_floor")


class ShorterSideResize:
    """Resize so the shorter side is `size`; the longer side is round(long * size / short) (PIL
    interpolation), as Keras-era ImageNet pipelines do (data.rounding=round_floor)."""

    def __init__(self, size: int, interpolation: str):
        from PIL import Image

        self.size = size
        self.resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST,
                         "lanczos": Image.LANCZOS}[interpolation]

    def __call__(self, img):
        w, h = img.size
        if w <= h:
            new = (self.size, int(round(h * self.size / w)))
        else:
            new = (int(round(w * self.size / h)), self.size)
        return img.resize(new, self.resample)


class CenterCropFloor:
    """The size x size crop with top-left corner (floor((w - size) / 2), floor((h - size) / 2))."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, img):
        w, h = img.size
        if w < self.size or h < self.size:
            raise ValueError(f"image of {w}x{h} pixels is smaller than data.crop={self.size}")
        left, top = (w - self.size) // 2, (h - self.size) // 2
        return img.crop((left, top, left + self.size, top + self.size))


def _image_transform(cfg):
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    modes = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
             "nearest": InterpolationMode.NEAREST, "lanczos": InterpolationMode.LANCZOS}
    interp = str(cfg.get("interpolation", "bilinear")).lower()
    if interp not in modes:
        raise ValueError(f"data.interpolation={interp!r} is invalid: need one of {', '.join(modes)}")
    rounding = str(cfg.get("rounding") or "torchvision")
    if rounding not in ROUNDING:
        raise ValueError(f"data.rounding={rounding!r} is invalid: need one of {', '.join(ROUNDING)}")
    steps = []  # ImageFolder loads RGB (greyscale images become three equal channels)
    if cfg.get("resize") is not None:
        size = int(cfg.resize)
        steps.append(ShorterSideResize(size, interp) if rounding == "round_floor"
                     else transforms.Resize(size, interpolation=modes[interp]))
    if cfg.get("crop") is not None:
        crop = int(cfg.crop)
        steps.append(CenterCropFloor(crop) if rounding == "round_floor" else transforms.CenterCrop(crop))
    steps += [transforms.ToTensor(), transforms.Normalize(list(cfg.mean), list(cfg.std))]
    return transforms.Compose(steps)


def _image_folder(root: Path, transform):
    from torchvision.datasets import ImageFolder

    ds = ImageFolder(str(root), transform=transform)  # class index = sorted folder position
    ids = [os.path.relpath(p, root) for p, _ in ds.samples]
    return ds, [f"{root.resolve()}/{i}" for i in ids]


LABEL_MODES = ("auto", "folder", "imagenet", "index")
_WNID = re.compile(r"n\d{8}")


@functools.lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet IDs in class-index order (timm's offline copy)."""
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo("imagenet-1k").label_names())


@functools.lru_cache(maxsize=1)
def _imagenet_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(imagenet_wnids())}


def folder_labels(classes: list[str], mode: str, key: str = "data.val_root") -> tuple[dict[str, int], str]:
    """Class index of each folder name under `data.labels=mode`, and the mode resolved.

    folder: sorted folder position (torchvision's ImageFolder); imagenet: ImageNet-1k index of
    a WordNet-ID folder name (n01440764 -> 0), so a folder holding only some ImageNet classes
    keeps the labels a 1000-class model predicts; index: the folder name is the class index
    (ImageNetV2's 0 ... 999); auto: imagenet when every name is an ImageNet-1k WordNet ID,
    index when every name is a non-negative integer, else folder."""
    if mode not in LABEL_MODES:
        raise ValueError(f"data.labels={mode!r} is invalid: need one of {', '.join(LABEL_MODES)}")
    if mode == "auto":
        if all(_WNID.fullmatch(c) for c in classes):
            mode = "imagenet" if all(c in _imagenet_index() for c in classes) else "folder"
        elif all(c.isdigit() for c in classes):
            mode = "index"
        else:
            mode = "folder"
    if mode == "folder":
        return {c: i for i, c in enumerate(classes)}, mode
    if mode == "index":
        bad = [c for c in classes if not c.isdigit()]
        if bad:
            raise ValueError(f"data.labels=index needs integer class folder names in {key}; found {', '.join(bad[:5])}")
        return {c: int(c) for c in classes}, mode
    index = _imagenet_index()
    bad = [c for c in classes if c not in index]
    if bad:
        raise ValueError(f"data.labels=imagenet needs ImageNet-1k WordNet-ID class folders (e.g. n01440764) in "
                         f"{key}; found {', '.join(bad[:5])}")
    return {c: index[c] for c in classes}, mode


def _split_classes(ds, ids: list[str], every) -> tuple:
    """(val, val_ids, calib, calib_ids): the class folders at sorted positions 0, K, 2K, ... become the
    calibration pool, the others stay validation (data.split_every=K; class-disjoint by construction)."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 2:
        raise ValueError(f"data.split_every={every!r} is invalid: need an integer >= 2 (every K-th class folder "
                         f"becomes calibration data) or null")
    if len(ds.classes) < every:
        raise ValueError(f"data.split_every={every}: data.val_root has only {len(ds.classes)} class folders")
    calib_classes = {c for i, c in enumerate(ds.classes) if i % every == 0}
    folder_of = [ds.classes[ds.class_to_idx_folder[i]] for i in range(len(ds.samples))]
    keep = [i for i, c in enumerate(folder_of) if c not in calib_classes]
    take = [i for i, c in enumerate(folder_of) if c in calib_classes]
    val = torch.utils.data.Subset(ds, keep)
    val.targets = [ds.targets[i] for i in keep]
    calib = torch.utils.data.Subset(ds, take)
    return val, [ids[i] for i in keep], calib, [ids[i] for i in take]


def _relabel(ds, mapping: dict[str, int]) -> None:
    """Give an ImageFolder dataset the class indices `mapping` (folder name -> index)."""
    ds.class_to_idx = dict(mapping)
    ds.class_to_idx_folder = [i for _, i in ds.samples]  # sorted folder position of each sample
    ds.samples = [(path, mapping[ds.classes[i]]) for path, i in ds.samples]
    ds.imgs = ds.samples
    ds.targets = [label for _, label in ds.samples]


PREPROCESS_KEYS = ("resize", "crop", "mean", "std", "interpolation", "rounding")


def model_preprocess(module) -> dict | None:
    """The evaluation preprocessing a timm model's pretrained weights expect, from its `pretrained_cfg` (resolved
    offline by timm.data.resolve_data_config; the default tag's settings, e.g. ViT-B/16 augreg: mean/std 0.5,
    crop 0.9, bicubic). Resize = floor(crop / crop_pct) as in timm's eval transform. A model that carries its own
    `lpq_preprocess` dict (the model config's `preprocess` block, e.g. model=mobilenet_v1_025_tfjs) gives that.
    None for other models."""
    own = getattr(module, "lpq_preprocess", None)
    if own:
        return {k: (list(v) if k in ("mean", "std") else v) for k, v in dict(own).items() if k in PREPROCESS_KEYS}
    if not getattr(module, "pretrained_cfg", None):
        return None
    from timm.data import resolve_data_config

    dc = resolve_data_config({}, model=module)
    if dc.get("crop_mode", "center") != "center":
        raise ValueError(f"data.preprocess=model: crop_mode={dc['crop_mode']!r} is not supported; "
                         "set data.preprocess=config and the data.* keys")
    crop = int(dc["input_size"][-1])
    return {"resize": int(crop / float(dc["crop_pct"])), "crop": crop, "mean": [float(v) for v in dc["mean"]],
            "std": [float(v) for v in dc["std"]], "interpolation": str(dc["interpolation"])}


def resolve_data_cfg(cfg, module):
    """`data` config with the preprocessing actually used: `data.preprocess=model` (default) takes it from the
    model's pretrained config when it has one (timm), `config` (or a model without one) keeps data.resize/crop/
    mean/std/interpolation. Returns a copy; the embedded dataset is unaffected."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    if data.get("kind") != "imagefolder":
        return OmegaConf.create(data)
    mode = str(data.get("preprocess", "model"))
    if mode not in ("model", "config"):
        raise ValueError(f"data.preprocess={mode!r} is invalid: need model or config")
    found = model_preprocess(module) if mode == "model" else None
    if found:
        data.update(found)
    data["preprocess_source"] = ("model.preprocess" if getattr(module, "lpq_preprocess", None) else
                                 "model.pretrained_cfg") if found else "data config"
    log.info("image preprocessing (%s): resize %s, crop %s, %s, rounding %s, mean %s, std %s", data["preprocess_source"],
             data.get("resize"), data.get("crop"), data.get("interpolation"), data.get("rounding") or "torchvision",
             data.get("mean"), data.get("std"))
    return OmegaConf.create(data)


def build_data(cfg) -> EvalData:
    """Validation and calibration-pool datasets for `data=embedded`, `data=imagefolder` or `data=cifar10`."""
    kind = cfg.get("kind")
    if kind == "embedded":
        val, calib = digits_split("val"), digits_split("calib")
        return EvalData(val, calib, val.ids, calib.ids, 10, "embedded:sklearn-digits")
    if kind == "imagefolder":
        val_root = _check_root(cfg.get("val_root"), "data.val_root")
        every = cfg.get("split_every")
        transform = _image_transform(cfg)
        val, val_ids = _image_folder(val_root, transform)
        mapping, label_mode = folder_labels(list(val.classes), str(cfg.get("labels", "auto")))
        _relabel(val, mapping)
        log.info("validation labels: data.labels=%s -> %s (%d class folders)", cfg.get("labels", "auto"), label_mode,
                 len(val.classes))
        n_classes = len(val.classes)
        if every is not None:
            if cfg.get("calib_root") not in (None, "", "???"):
                raise ValueError(f"data.split_every={every} takes the calibration pool from data.val_root: "
                                 f"leave data.calib_root unset (it is {cfg.get('calib_root')})")
            val, val_ids, calib, calib_ids = _split_classes(val, val_ids, every)
            n_classes = len(set(val.targets))
            log.info("data.split_every=%s: %d calibration images from every %s-th class folder, %d validation images "
                     "from the other folders (class-disjoint)", every, len(calib_ids), every, len(val_ids))
        else:
            calib_root = _check_root(cfg.get("calib_root"), "data.calib_root")
            calib, calib_ids = _image_folder(calib_root, transform)  # calibration labels are never read
            if val.classes != calib.classes:
                log.warning("data.calib_root and data.val_root have different class folders (labels are never read for calibration)")
        applied = {k: list(cfg.get(k)) if k in ("mean", "std") else cfg.get(k) for k in PREPROCESS_KEYS}
        applied["preprocess_source"] = cfg.get("preprocess_source", "data config")
        return EvalData(val, calib, val_ids, calib_ids, n_classes, f"imagefolder:{val_root}", applied,
                        label_mode)
    if kind == "cifar10":
        from .cifar10 import build_cifar10

        return build_cifar10(cfg)
    raise ValueError(f"data.kind={kind!r} is invalid: need embedded, imagefolder or cifar10")


def calibration_subset(data: EvalData, num_samples: int, seed: int, param: str = "calib.num_samples"
                       ) -> tuple[torch.utils.data.Dataset, list[str]]:
    """num_samples calibration images drawn without replacement with `seed`, in index order;
    refuses any overlap with the evaluation set (LPQ §6). `param` names the config key in errors."""
    pool = len(data.calib)
    if not 1 <= num_samples <= pool:
        raise ValueError(f"{param}={num_samples} is invalid: need 1 <= {param} <= {pool} (calibration pool size)")
    idx = np.sort(np.random.default_rng(seed).choice(pool, size=num_samples, replace=False))
    ids = [data.calib_ids[i] for i in idx]
    overlap = set(ids) & set(data.val_ids)
    if overlap:
        raise ValueError(
            f"calibration and evaluation images overlap ({len(overlap)} shared, e.g. {sorted(overlap)[0]}): "
            "use disjoint folders for data.calib_root and data.val_root"
        )
    return torch.utils.data.Subset(data.calib, idx.tolist()), ids
