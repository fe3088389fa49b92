"""`python -m lpq.pipeline.histograms OUT.png --qconfig FILE -- OVERRIDES...`: weight histograms of a model's
layers with the code points of the formats LPQ chose for them (PIPELINE §3.8 figure list).

The model is built exactly as `lpq evaluate` builds it from the same Hydra overrides (BatchNorm folded, so the
histogram shows the weights that are actually quantized). For up to `--layers` layers spread over the execution
order (first, last and evenly spaced ones between), one panel shows the weight histogram (log count) and a
vertical line at every code point of the layer's weight quantizer that falls inside the weights' range, plus a
dotted line at the largest code point when it lies outside that range (a clipping/headroom cue).
"""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np

from . import atomic

log = logging.getLogger("lpq")


def spread(n_total: int, n_pick: int) -> list[int]:
    """Indices of `n_pick` items spread over `n_total` (always the first and the last)."""
    if n_total <= n_pick:
        return list(range(n_total))
    if n_pick == 1:
        return [0]
    return sorted({round(i * (n_total - 1) / (n_pick - 1)) for i in range(n_pick)})


def weight_layers(qm, qconfig) -> list[tuple[str, np.ndarray, str | None, np.ndarray | None]]:
    """(layer, FP32 weights, weight quantizer spec, code points in weight units) per weighted layer, in order."""
    quantizers = qconfig.quantizers()
    out = []
    for unit in qm.units:
        if unit.kind not in ("conv", "linear"):
            continue
        name = unit.name
        weights = qm.fp_weight(name).detach().float().cpu().numpy().ravel()
        wq = quantizers.get(name, (None, None))[0]
        points = None
        if wq is not None and wq.channel_sf is None:
            points = np.asarray(wq.fmt.codebook(), dtype=np.float64)
            points = points[np.isfinite(points)]
        out.append((name, weights, None if wq is None else wq.spec, points))
    return out


def plot(layers, title: str, path: Path, n_pick: int = 4) -> None:
    import matplotlib.pyplot as plt

    chosen = [layers[i] for i in spread(len(layers), n_pick)] or [("(no layers)", np.zeros(1), None, None)]
    cols = min(2, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel()[len(chosen):]:
        ax.set_visible(False)
    for ax, (name, weights, spec, points) in zip(axes.ravel(), chosen):
        lo, hi = float(weights.min()), float(weights.max())
        ax.hist(weights, bins=120, color="C0", alpha=0.75, log=True)
        if points is not None and len(points):
            inside = points[(points >= lo) & (points <= hi)]
            for p in inside:
                ax.axvline(p, color="C3", lw=0.6, alpha=0.8)
            top, span = float(np.abs(points).max()), max(abs(lo), abs(hi))
            if top > span:
                for p in (-top, top):
                    ax.axvline(p, color="C3", lw=0.8, ls=":")
            extent = top if span < top <= 4 * span else span  # show headroom unless it would squash the histogram
            ax.set_xlim(-1.05 * extent, 1.05 * extent)
            sub = f"{spec}: {len(inside)} of {len(points)} code points in range"
        else:
            sub = spec or "FP32 (not quantized)"
        ax.set_title(f"{name}\n{sub}", fontsize=8)
        ax.set_xlabel("weight")
        ax.set_ylabel("count")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic.write_with(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight",
                                                  metadata={"Software": None}))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import sys

    import matplotlib

    matplotlib.use("Agg")
    args = sys.argv[1:] if argv is None else list(argv)
    overrides = args[args.index("--") + 1:] if "--" in args else []
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--qconfig", type=Path, required=True)
    ap.add_argument("--layers", type=int, default=4)
    a = ap.parse_args(args[: args.index("--")] if "--" in args else args)
    if a.layers < 1:
        ap.error(f"--layers={a.layers} is invalid: need at least 1")
    if not a.qconfig.is_file():
        ap.error(f"--qconfig {a.qconfig} does not exist")

    from ..cli import _setup_runtime, compose
    from ..runs.from_config import build_quant_model
    from ..quant.qconfig import QConfig

    _setup_runtime()
    cfg = compose(overrides)
    _, loaded, qm = build_quant_model(cfg)
    qc = QConfig.load(a.qconfig)
    layers = weight_layers(qm, qc)
    log.info("weight histograms of %d of %d layers (%s) -> %s", min(a.layers, len(layers)), len(layers),
             a.qconfig, a.out)
    plot(layers, f"{cfg.model.name}: weights and the LP code points LPQ chose ({a.qconfig.parent.parent.name})",
         a.out, a.layers)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    raise SystemExit(main())
