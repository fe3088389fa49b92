"""`lpq train`: train an embedded model on the embedded digits train split, deterministically
(fixed seed, deterministic algorithms, single-process data order)."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import nn

from ..data.embedded import digits_split
from ..pipeline import atomic
from ..pipeline.progress import progress
from .embedded import EMBEDDED_MODELS

log = logging.getLogger("lpq")

TRAIN_SETTINGS = {
    "digits_cnn": {"epochs": 30, "lr": 3e-3, "batch": 64, "weight_decay": 1e-4},
    "digits_vit": {"epochs": 50, "lr": 2e-3, "batch": 64, "weight_decay": 5e-2},
}


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    return float((model(images).argmax(1) == labels).float().mean() * 100)


def train_embedded(name: str, out_dir: str | Path, seed: int = 0) -> dict:
    """Train `name` and write out_dir/model.pt (state dict) and out_dir/train.json."""
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"model={name!r} cannot be trained by lpq train: need one of {', '.join(EMBEDDED_MODELS)}")
    settings = TRAIN_SETTINGS[name]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these models are tiny: one thread is ~5x faster than two on 2 cores
    try:
        torch.manual_seed(seed)
        return train_module(EMBEDDED_MODELS[name](), name, settings, Path(out_dir), seed)
    finally:
        torch.set_num_threads(threads)


def train_module(model: nn.Module, name: str, settings: dict, out: Path, seed: int) -> dict:
    """Train `model` on the digits train split (AdamW, one-cycle schedule, seeded order) and
    write out/model.pt (state dict) and out/train.json. The caller seeds torch before it builds
    the model (its initialisation draws from the global generator)."""
    train, val = digits_split("train"), digits_split("val")
    opt = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    steps = settings["epochs"] * ((len(train) + settings["batch"] - 1) // settings["batch"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings["lr"], total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _epoch in progress(range(settings["epochs"]), desc=f"train {name}", unit="epoch"):
        model.train()
        order = torch.randperm(len(train), generator=gen)
        for i in range(0, len(order), settings["batch"]):
            idx = order[i:i + settings["batch"]]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(train.images[idx]), train.labels[idx])
            loss.backward()
            opt.step()
            sched.step()
    result = {
        "model": name, "seed": seed, "epochs": settings["epochs"],
        "train_top1": accuracy(model, train.images, train.labels),
        "val_top1": accuracy(model, val.images, val.labels),
        "seconds": round(time.perf_counter() - start, 3),
    }
    atomic.torch_save(out / "model.pt", model.state_dict())
    atomic.write_json(out / "train.json", result)
    log.info("trained %s: val top-1 %.2f%% in %.1f s -> %s", name, result["val_top1"], result["seconds"], out / "model.pt")
    return result
