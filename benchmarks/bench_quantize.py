"""Fake-quantization throughput: LP8 (and a few baselines) against torch's own float8 cast.

Prints, for 16M float32 values on CPU (and on CUDA when present), the time of
  - a plain copy (x.clone(): the memory-bandwidth reference),
  - torch's float32 -> float8_e4m3fn -> float32 round trip,
  - lpq fake quantization (fresh output tensor each call, as in a network forward),
and the ratios. Timing never decides a test; this script only reports.

    python benchmarks/bench_quantize.py [--numel 16777216] [--repeat 7] [--formats ...]
"""
from __future__ import annotations

import argparse

import torch

from lpq.formats import parse
from timing import median_time  # benchmarks/timing.py (scripts run from any directory)


def bench_device(device: str, numel: int, repeat: int, specs: list[str]) -> None:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(numel, generator=gen) * 0.5).to(device)
    copy_s = median_time(lambda: x.clone(), repeat, sync)
    f8_s = median_time(lambda: x.to(torch.float8_e4m3fn).to(torch.float32), repeat, sync)
    bytes_moved = 2 * 4 * numel  # read + write float32
    print(f"\n[{device}] {numel} float32 values, median of {repeat}; threads={torch.get_num_threads()}")
    print(f"  {'plain copy (clone)':34s} {copy_s * 1e3:8.2f} ms  {bytes_moved / copy_s / 1e9:7.1f} GB/s")
    print(f"  {'torch float8_e4m3fn round trip':34s} {f8_s * 1e3:8.2f} ms")
    for spec in specs:
        fmt = parse(spec)
        fmt.quantize(x[:16])  # build tables and compile kernels outside the timing
        q_s = median_time(lambda: fmt.quantize(x), repeat, sync)
        print(
            f"  {('lpq ' + fmt.spec):34s} {q_s * 1e3:8.2f} ms  "
            f"speed vs float8 cast {f8_s / q_s:5.2f}x  "
            f"fraction of copy bandwidth {copy_s / q_s:5.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numel", type=int, default=16 * 1024 * 1024)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--formats", nargs="+", default=["lp<8,1,3,0>", "lp<4,1,2,0.5>", "lp<16,1,4,-2.25>"])
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    args = ap.parse_args()
    if args.device in ("cpu", "all"):
        bench_device("cpu", args.numel, args.repeat, args.formats)
    if args.device in ("cuda", "all"):
        if torch.cuda.is_available():
            bench_device("cuda", args.numel, args.repeat, args.formats)
        else:
            print("\n[cuda] no CUDA device: skipped")


if __name__ == "__main__":
    main()
