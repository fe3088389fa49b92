"""GPU check: the CUDA fast paths against the CPU reference, bit for bit, on every format family; their
throughput; and a real network quantized on CUDA against the same network quantized on the CPU.

    python benchmarks/gpu_check.py [--cifar-weights resnet32-d509ac18.th --cifar-root cifar10_jpeg] [--json F]

1. Bit-exactness: for every spec below, the CuPy kernel (the default on CUDA) and the torch-op kernel
   (LPQ_KERNEL=torch, CUDA without CuPy) on CUDA tensors equal `Format.quantize_reference` (numpy) on every
   threshold of the format and its float32 neighbours, the code book, specials (±0, ±inf, NaN, subnormals) and
   2^20 random values over 80 octaves (the dispatch of `Format.quantize`, the CuPy kernel called directly and
   the torch-op kernel); with no scale, a scalar scale and per-channel scales; float16 and
   bfloat16 inputs equal the CPU fast path. Any differing bit is printed with its input and the run exits 1.
2. Throughput: values per second of the CuPy kernel, the torch-op kernel on CUDA and the numba kernel on all
   CPU threads, measured in the same run (ratios printed; CUDA timed with events after a warm-up).
3. A real network (optional): the pack's CIFAR-10 ResNet-32, uniform calibrated PTQ at W8A8 LP / W4A4 LP /
   W4A4 INT, calibrated on the CPU, then evaluated on the CPU and on CUDA (TF32 off) with the same qconfig:
   top-1 on both, the number of images whose prediction differs (CUDA convolutions sum in another order, so a
   few activations can round to a neighbouring code), and the evaluation time of each.
4. With the same network: a short LPQ search (LP, W4A4 mixed) on CUDA and on the CPU, evaluations per second.

Exit status 0 when every bit-exactness check passes (part 3 reports, it does not judge).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpq.formats import parse  # noqa: E402
from lpq.kernels import _cupy_ok, build_kernel_table, cuda_run, quantize_tensor  # noqa: E402
from lpq.kernels import torch_native  # noqa: E402

SPECS = [
    "lp<8,1,3,0>", "lp<8,2,7,0>", "lp<4,1,2,0.5>", "lp<4,1,2,0,underflow=flush>", "lp<6,2,3,0,round=linear>",
    "lp<5,1,3,0.25>", "lp<16,1,4,-2.25>", "lp<12,0,11,0.3>", "lp<2,0,1,0.75>", "lp<3,0,2,-1>",
    "int<8>", "int<4>", "int<2>", "int<16>", "uint<8>", "uint<4>", "uint<1>",
    "fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1", "fp<2,1>", "fp<5,10>",
    "posit<8,2>", "posit<8,0>", "posit<4,1>", "posit<16,1>",
    "af<8,4>", "af<4,2>", "lns<8,3>", "lns<4,1>",
    "flint<4>", "pot<4>", "uflint<4>", "upot<4>",
]
SCALES = (None, 0.375, 2.0 ** -5)


def bits_equal(a: np.ndarray, b: np.ndarray) -> int:
    """Number of elements whose float32 bits differ (NaN payloads ignored)."""
    a = np.asarray(a, np.float32).ravel()
    b = np.asarray(b, np.float32).ravel()
    nan = np.isnan(a) & np.isnan(b)
    return int(np.count_nonzero((a.view(np.uint32) != b.view(np.uint32)) & ~nan))


def inputs_for(fmt, rng: np.random.Generator) -> np.ndarray:
    table = build_kernel_table(fmt)
    thr = table.thresholds.view(np.float32)
    thr = thr[np.isfinite(thr)]
    near = [thr]
    lo, hi = thr.copy(), thr.copy()
    for _ in range(3):
        lo = np.nextafter(lo, np.float32(0))
        hi = np.nextafter(hi, np.float32(np.inf))
        near += [lo, hi]
    f32 = np.finfo(np.float32)
    specials = np.float32([0.0, f32.smallest_subnormal, f32.smallest_normal, f32.max, np.inf, np.nan, 1.0, 1e-30])
    random = (rng.standard_normal(1 << 20) * np.exp2(rng.uniform(-40, 40, 1 << 20))).astype(np.float32)
    pos = np.concatenate(near + [fmt.codebook().astype(np.float32), specials])
    return np.concatenate([pos, -pos, random]).astype(np.float32)


def check_bits(rng: np.random.Generator, cupy_present: bool) -> list[str]:
    failures: list[str] = []
    for spec in SPECS:
        fmt = parse(spec)
        x = inputs_for(fmt, rng)
        xt = torch.from_numpy(x).cuda()
        for scale in SCALES:
            ref = fmt.quantize_reference(x, None if scale is None else np.float64(scale))
            got = quantize_tensor(fmt, xt, scale).cpu().numpy()
            r, s = fmt.scale_pair(scale, np.float32)
            table = build_kernel_table(fmt)
            runs = [("dispatch", got), ("torch-op", torch_native.quantize_f32(table, xt, r, s).cpu().numpy())]
            if cupy_present:  # the CuPy kernel itself, whatever the start-up check decided
                runs.append(("cupy", cuda_run(fmt, table, xt, r, s).cpu().numpy()))
            for name, out in runs:
                bad = bits_equal(ref, out)
                if bad:
                    i = int(np.nonzero(ref.view(np.uint32) != out.view(np.uint32))[0][0])
                    failures.append(f"{spec} scale={scale} {name}: {bad} of {x.size} differ, e.g. x={x[i]!r} "
                                    f"-> {out[i]!r}, reference {ref[i]!r}")
        # per-channel scales (broadcast along dim 0) and half / bfloat16 against the CPU fast path
        xc = torch.from_numpy(x[: (x.size // 8) * 8].reshape(8, -1))
        sc = torch.tensor([0.5, 1.0, 2.0, 8.0, 0.375, 3.0, 2.0 ** -7, 2.0 ** 9]).view(8, 1)
        want = quantize_tensor(fmt, xc, sc).numpy()
        have = quantize_tensor(fmt, xc.cuda(), sc.cuda()).cpu().numpy()
        if bits_equal(want, have):
            failures.append(f"{spec} per-channel: {bits_equal(want, have)} differ")
        for dt in (torch.float16, torch.bfloat16):
            xh = torch.from_numpy(x[np.isfinite(x)]).to(dt)
            if not torch.equal(quantize_tensor(fmt, xh).float().nan_to_num(7.0),
                               quantize_tensor(fmt, xh.cuda()).cpu().float().nan_to_num(7.0)):
                failures.append(f"{spec} {dt}: CUDA differs from CPU")
        print(f"  {spec:<28} {x.size:>9} inputs x {len(SCALES)} scales + per-channel + half/bf16: "
              f"{'ok' if not any(f.startswith(spec + ' ') for f in failures) else 'DIFFERS'}", flush=True)
    return failures


def throughput(numel: int, repeat: int) -> list[dict]:
    rows = []
    x_cpu = torch.randn(numel, generator=torch.Generator().manual_seed(0)) * 0.5
    x = x_cpu.cuda()
    for spec in ("lp<8,1,3,0>", "lp<4,1,2,0.5>", "int<8>", "fp8_e4m3", "posit<8,2>"):
        fmt = parse(spec)
        table = build_kernel_table(fmt)
        row = {"spec": spec, "numel": numel}
        for name, fn in (("cupy", lambda: cuda_run(fmt, table, x, None, None)),
                         ("torch_op_cuda", lambda: torch_native.quantize_f32(table, x, None, None))):
            fn()
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            times = []
            for _ in range(repeat):
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            row[name + "_gvals_s"] = numel / float(np.median(times)) / 1e9
        fmt.quantize(x_cpu[:1000])
        times = []
        for _ in range(max(1, repeat // 3)):
            t0 = time.perf_counter()
            fmt.quantize(x_cpu)
            times.append(time.perf_counter() - t0)
        row["numba_cpu_gvals_s"] = numel / float(np.median(times)) / 1e9
        row["cupy_over_torch_op"] = row["cupy_gvals_s"] / row["torch_op_cuda_gvals_s"]
        row["cupy_over_cpu"] = row["cupy_gvals_s"] / row["numba_cpu_gvals_s"]
        print(f"  {spec:<14} CuPy {row['cupy_gvals_s']:8.1f} G/s  torch-op CUDA {row['torch_op_cuda_gvals_s']:7.1f} G/s"
              f"  numba CPU ({torch.get_num_threads()} threads) {row['numba_cpu_gvals_s']:6.2f} G/s  "
              f"CuPy/torch-op {row['cupy_over_torch_op']:5.1f}x  CuPy/CPU {row['cupy_over_cpu']:6.0f}x", flush=True)
        rows.append(row)
    return rows


def real_network(weights: str, root: str) -> list[dict]:
    from lpq.data.cifar10 import build_cifar10
    from lpq.models.providers import build_model
    from lpq.quant.ptq import uniform_qconfig
    from lpq.runs import activation_statistics, calibration_batches, prepare, top1

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    data = build_cifar10({"root": root, "calib_split": "auto", "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225]})
    calib = torch.utils.data.Subset(data.calib, list(np.random.default_rng(0).permutation(len(data.calib))[:256]))
    rows = []
    for w, a in (("lp<8,*,*,*>", "lp<8,*,*,*>"), ("lp<4,*,*,*>", "lp<4,*,*,*>"), ("int<4>", "int<4>")):
        row = {"w_format": w, "a_format": a}
        preds = {}
        for device in ("cpu", "cuda"):
            module = build_model({"kind": "cifar_resnet", "depth": 32, "checkpoint": weights}).module
            batches = calibration_batches(calib, 64)
            qm = prepare(module, batches[0][:1])
            stats = activation_statistics(qm, batches)  # calibration on the CPU for both: the same qconfig
            qc = uniform_qconfig(qm, stats, w, a, per_channel=False)
            qm.to(device)
            t0 = time.perf_counter()
            res = top1(qm, qc, data.val, batch_size=500, device=device)
            if device == "cuda":
                torch.cuda.synchronize()
            row[f"top1_{device}"] = res["top1"]
            row[f"seconds_{device}"] = round(time.perf_counter() - t0, 3)
            preds[device] = np.asarray(res["predictions"])
        row["predictions_differ"] = int(np.count_nonzero(preds["cpu"] != preds["cuda"]))
        print(f"  ResNet-32 W={w} A={a}: top-1 CPU {row['top1_cpu']:.2f} / CUDA {row['top1_cuda']:.2f}, "
              f"{row['predictions_differ']} of {len(preds['cpu'])} predictions differ; eval {row['seconds_cpu']} s CPU "
              f"vs {row['seconds_cuda']} s CUDA", flush=True)
        rows.append(row)
    return rows


def search_speed(weights: str, root: str, device: str, population: int, generations: int) -> dict:
    """A short LPQ search (LP, W4A4 mixed, 256 calibration images) on `device`: evaluations per second."""
    from lpq.data.cifar10 import build_cifar10
    from lpq.models.providers import build_model
    from lpq.runs import activation_statistics, calibration_batches, prepare
    from lpq.runs.search import prepare_search
    from lpq.search.ga import GASettings
    from lpq.search.genome import make_family

    data = build_cifar10({"root": root, "calib_split": "auto", "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225]})
    calib = torch.utils.data.Subset(data.calib, list(np.random.default_rng(0).permutation(len(data.calib))[:256]))
    module = build_model({"kind": "cifar_resnet", "depth": 32, "checkpoint": weights}).module
    batches = calibration_batches(calib, 64, device=device)
    qm = prepare(module, batches[0][:1], device=device)
    stats = activation_statistics(qm, batches, device=device)
    settings = GASettings(population=population, generations=generations, elites=1, patience=generations,
                          max_evals=population * (generations + 1), w_bits=4, a_bits=4, seed=0)
    family = make_family("lp", [2, 3, 4, 5, 6, 8], sf_step=2 ** -8, es_max=3)
    search, evaluator = prepare_search(qm, batches, stats, family, settings)
    t0 = time.perf_counter()
    best = search.run()
    seconds = time.perf_counter() - t0
    evals = evaluator.stats.evaluations
    row = {"device": device, "population": population, "generations": generations, "evaluations": evals,
           "seconds": round(seconds, 2), "evals_per_s": round(evals / seconds, 3),
           "best_fitness": float(search.memo[search.key(best)]["fitness"])}
    print(f"  LPQ search on {device}: {evals} evaluations in {seconds:.1f} s = {row['evals_per_s']} eval/s; "
          f"a full P 32 / G 50 search (1,532 evaluations) would take about {1532 / row['evals_per_s'] / 60:.1f} min; "
          f"best fitness {row['best_fitness']:.5f}", flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cifar-weights", help="resnet32-d509ac18.th (part 3 runs when given with --cifar-root)")
    ap.add_argument("--cifar-root", help="CIFAR-10: cifar-10-batches-py or test/ + calib/ image folders")
    ap.add_argument("--numel", type=int, default=64 * 1024 * 1024)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--population", type=int, default=8, help="part 4: GA population")
    ap.add_argument("--generations", type=int, default=2, help="part 4: GA generations")
    ap.add_argument("--json", help="write every measurement to this file")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                    "kernel": "cupy" if _cupy_ok() else "torch-op", "lpq_kernel_env": os.environ.get("LPQ_KERNEL")}
    try:
        import cupy

        report["cupy"] = cupy.__version__
    except ImportError:
        report["cupy"] = None
    print(f"device {report['device']}, torch {report['torch']}, CuPy {report['cupy']}, CUDA kernel in use: "
          f"{report['kernel']}", flush=True)
    print("1. bit-exactness against the numpy reference", flush=True)
    failures = check_bits(np.random.default_rng(0), report["cupy"] is not None)
    report["bit_failures"] = failures
    print("2. throughput", flush=True)
    report["throughput"] = throughput(args.numel, args.repeat)
    if args.cifar_weights and args.cifar_root:
        print("3. ResNet-32 on CPU and CUDA", flush=True)
        report["resnet32"] = real_network(args.cifar_weights, args.cifar_root)
        print("4. LPQ search speed (ResNet-32, LP, W4A4 mixed)", flush=True)
        report["search"] = [search_speed(args.cifar_weights, args.cifar_root, d, args.population, args.generations)
                            for d in ("cuda", "cpu")]
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    for f in failures:
        print("FAIL", f)
    print("bit-exactness:", "all equal" if not failures else f"{len(failures)} failures")
    return 1 if failures or report["kernel"] != "cupy" else 0


if __name__ == "__main__":
    sys.exit(main())
