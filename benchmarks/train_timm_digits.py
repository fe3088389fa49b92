"""Train timm architectures on the embedded digits (offline), for LPQ runs on *trained* timm
models where no pretrained weights are available (issue #4: "a timm ResNet and ViT ... trained
models for accuracy"). The nets are the unmodified timm classes with digits-sized arguments
(1 input channel, 10 classes; the ViT on 2×2 patches of the 8×8 image, 3 blocks of width 96); weights go to
OUT/<name>/model.pt and load with `model=timm model.name=<name> model.checkpoint=...
model.num_classes=10 model.kwargs=...` (the command is printed).

    python benchmarks/train_timm_digits.py OUT [--models resnet18 vit_tiny_patch16_224]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lpq.models.train import train_module

# timm.create_model arguments and training settings per architecture
ARCHS = {
    "resnet18": ({"in_chans": 1}, {"epochs": 15, "lr": 2e-3, "batch": 64, "weight_decay": 1e-4}),
    # ViT-Tiny's class at a quarter of its depth and half its width (16 tokens of 2x2 patches), so that
    # a paper-scale search (population 32, 50 generations) takes minutes on 2 CPU cores
    "vit_tiny_patch16_224": ({"in_chans": 1, "img_size": 8, "patch_size": 2, "depth": 3, "embed_dim": 96,
                              "num_heads": 3},
                             {"epochs": 60, "lr": 1e-3, "batch": 64, "weight_decay": 5e-2}),
}


def main() -> None:
    import timm

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--models", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for name in args.models:
        kwargs, settings = ARCHS[name]
        torch.manual_seed(args.seed)
        model = timm.create_model(name, pretrained=False, num_classes=10, **kwargs)
        result = train_module(model, name, settings, args.out / name, args.seed)
        ckpt = args.out / name / "model.pt"
        kw = json.dumps(kwargs).replace('"', "").replace(" ", "")
        print(f"{name}: val top-1 {result['val_top1']:.2f}% in {result['seconds']:.0f} s -> {ckpt}")
        print(f"  lpq evaluate model=timm model.name={name} model.checkpoint={ckpt} model.num_classes=10 "
              f"'model.kwargs={kw}' data=embedded ...")


if __name__ == "__main__":
    main()
