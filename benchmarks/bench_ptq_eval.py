"""Fake-quantized evaluation throughput against FP32 on the same model and batch.

Default: timm resnet18 (random weights: speed does not depend on them), batch 64 at 224x224,
on CPU; all weights and input activations in lp<8,1,3,0> (BatchNorm folded first). Prints
images/s of both and the ratio (target: quantized >= 50 % of FP32).

    python benchmarks/bench_ptq_eval.py [--model resnet18] [--batch 64] [--repeat 3]
"""
from __future__ import annotations

import argparse

import torch

from lpq.quant.fold import fold_batchnorm
from lpq.quant.model import QuantModel
from lpq.quant.quantizer import make_quantizer
from timing import median_time  # benchmarks/timing.py (scripts run from any directory)


@torch.no_grad()
def main() -> None:
    import timm

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--format", default="lp<8,1,3,0>")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False).eval()
    fold_batchnorm(model)
    x = torch.randn(args.batch, 3, args.size, args.size)
    qm = QuantModel(model, x[:1])
    fp_s = median_time(lambda: qm(x), args.repeat)
    q = make_quantizer(args.format)
    qm.set_quantizers({u.name: (q, q) for u in qm.units})
    q_s = median_time(lambda: qm(x), args.repeat)
    print(f"{args.model}, batch {args.batch}, {args.size}x{args.size}, {torch.get_num_threads()} threads, "
          f"{len(qm.units)} quantized layers ({args.format} weights and activations)")
    print(f"  FP32            {args.batch / fp_s:8.1f} images/s")
    print(f"  fake-quantized  {args.batch / q_s:8.1f} images/s   ratio {fp_s / q_s:5.2f} of FP32")


if __name__ == "__main__":
    main()
