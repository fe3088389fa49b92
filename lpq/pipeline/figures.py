"""`python -m lpq.pipeline.figures results/<experiment>`: PNG figures from the result files (PIPELINE §3.8):
accuracy vs average weight bits per format family, LPQ's per-layer bit allocation, hardware comparison bars and the
DAC'24 poster's hardware numbers next to this model's profiles (hardware_vs_paper)."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from . import atomic
from .tables import accuracy_rows, hardware_rows, hardware_vs_paper_rows



def spec_bits(spec: str | None) -> int | None:
    """Width n of a quantizer spec string (`lp<4,1,2,0.5>` -> 4, `int<8>@3.2` -> 8, `fp8_e4m3` -> 8)."""
    if not spec:
        return None
    m = re.search(r"<(\d+)", spec) or re.search(r"(\d+)", spec)
    return int(m.group(1)) if m else None


def _save(fig, path: Path) -> None:
    atomic.write_with(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight",
                                                  metadata={"Software": None}))


def family_colours(rows: list[dict]) -> dict[str, str]:
    """One colour per format family across every panel (the same family has the same colour in every model's
    panel, whatever families the other models have)."""
    return {fmt: f"C{i % 10}" for i, fmt in enumerate(sorted({r["format"] for r in rows}))}


def accuracy_vs_bits(root: Path, out: Path) -> None:
    import matplotlib.pyplot as plt

    rows = accuracy_rows(root)
    models = sorted({r["model"] for r in rows}) or ["(none)"]
    colours = family_colours(rows)
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        mr = [r for r in rows if r["model"] == model]
        for fmt in sorted({r["format"] for r in mr}):
            for method, ls, mk in (("lpq", "-", "o"), ("none", ":", "x")):
                pts = sorted((r["avg_w_bits"], r["top1"]) for r in mr if r["format"] == fmt and r["method"] == method)
                if pts:
                    ax.plot(*zip(*pts), ls=ls, marker=mk, color=colours[fmt], label=f"{fmt} ({'LPQ' if method == 'lpq' else 'uniform'})")
        xs = [r["avg_w_bits"] for r in mr if r["avg_w_bits"] is not None]
        if xs and max(xs) - min(xs) < 1.0:  # one budget: a readable axis instead of offset ticks 3.9850, 3.9875, ...
            ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
        ref = next((r["fp32_top1"] for r in mr if r["fp32_top1"] is not None), None)
        if ref is not None:
            ax.axhline(ref, color="k", lw=0.8, ls="--", label="FP32")
        ax.set_title(model)
        ax.set_xlabel("average weight bits")
        ax.set_ylabel("top-1 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)  # each panel names its own families (they may differ between models)
    _save(fig, out / "accuracy_vs_bits.png")
    plt.close(fig)


def bit_allocation(root: Path, out: Path) -> None:
    """Per-layer weight/activation widths of the LP search at the first mixed budget (else the smallest budget)."""
    import matplotlib.pyplot as plt

    found = sorted(root.glob("search/*/lp/*/s0/qconfig.json"))
    by_model: dict[str, Path] = {}
    for p in found:
        model, wa = p.parts[-5], p.parts[-3]
        cur = by_model.get(model)
        if cur is None or (wa.endswith("-mix") and not cur.parts[-3].endswith("-mix")):
            by_model[model] = p
    models = sorted(by_model) or ["(none)"]
    fig, axes = plt.subplots(len(models), 1, figsize=(9, 3 * len(models)), squeeze=False)
    for ax, model in zip(axes[:, 0], models):
        if model in by_model:
            layers = json.loads(by_model[model].read_text())["layers"]
            names = list(layers)
            w = [spec_bits(layers[n].get("w")) or 0 for n in names]
            a = [spec_bits(layers[n].get("a")) or 0 for n in names]
            x = range(len(names))
            ax.bar([i - 0.2 for i in x], w, 0.4, label="weights")
            ax.bar([i + 0.2 for i in x], a, 0.4, label="activations")
            ax.set_xticks(list(x), names, rotation=60, ha="right", fontsize=6)
            ax.set_title(f"{model}: LPQ bit allocation (LP, {by_model[model].parts[-3]})")
            ax.set_ylabel("bits")
            ax.legend(fontsize=7)
    _save(fig, out / "bit_allocation.png")
    plt.close(fig)


def hardware(root: Path, out: Path, baseline: str) -> None:
    import matplotlib.pyplot as plt

    rows = hardware_rows(root, baseline)
    keys = sorted({(r["profile"], r["model"]) for r in rows}) or [("(none)", "")]
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        kr = [r for r in rows if (r["profile"], r["model"]) == key]
        labels = [f"{r['design']}\n{r['budget']}" for r in kr]
        x = range(len(kr))
        ax.bar([i - 0.2 for i in x], [r[f"perf_per_area_vs_{baseline}"] or 0 for r in kr], 0.4, label="perf/area")
        ax.bar([i + 0.2 for i in x], [r[f"energy_eff_vs_{baseline}"] or 0 for r in kr], 0.4, label="TOPS/W")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(list(x), labels, fontsize=6)
        ax.set_title(f"{key[1]} ({key[0]}), normalised to {baseline}")
        ax.legend(fontsize=7)
    _save(fig, out / "hardware.png")
    plt.close(fig)


PAPER_PROFILES = ("poster", "dac24", "default28", "ant_compat")


def hardware_vs_paper(out: Path, rows: list[dict] | None = None) -> None:
    """Three panels: TOPS/mm² of the poster's chart and PE-type ablation (poster vs dac24), and the
    normalised latency / energy of ResNet-50 and ViT-B/16 per design (poster and each profile)."""
    import matplotlib.pyplot as plt

    rows = hardware_vs_paper_rows() if rows is None else rows
    density = [r for r in rows if r["metric"] == "TOPS/mm2"]
    work = [r for r in rows if r["metric"] != "TOPS/mm2"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.2), gridspec_kw={"width_ratios": [1.1, 1, 1]})
    x = range(len(density))
    for j, key in enumerate(("poster", "dac24")):
        axes[0].bar([i + (j - 0.5) * 0.4 for i in x], [r[key] or 0 for r in density], 0.4, label=key, color=f"C{j}")
    axes[0].set_xticks(list(x), [r["design"] for r in density], rotation=45, ha="right", fontsize=7)
    axes[0].set_ylabel("TOPS/mm² (compute area)")
    axes[0].set_title("compute density: chart and PE-type ablation", fontsize=9)
    axes[0].legend(fontsize=7)
    for ax, metric in zip(axes[1:], ("latency vs adafloat", "energy vs adafloat")):
        mr = [r for r in work if r["metric"] == metric and r["design"] != "adafloat"]
        x = range(len(mr))
        width = 0.8 / len(PAPER_PROFILES)
        for j, key in enumerate(PAPER_PROFILES):
            ax.bar([i + (j - (len(PAPER_PROFILES) - 1) / 2) * width for i in x], [r[key] or 0 for r in mr], width,
                   label=key, color=f"C{j}")
        ax.set_xticks(list(x), [f"{r['model']}\n{r['design']}" for r in mr], fontsize=7)
        ax.set_title(f"{metric.split()[0]} normalised to AdaptivFloat", fontsize=9)
        ax.legend(fontsize=7)
    _save(fig, out / "hardware_vs_paper.png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", type=Path)
    ap.add_argument("--hw-baseline", default="ant")
    a = ap.parse_args(argv)
    out = a.results / "figures"
    accuracy_vs_bits(a.results, out)
    bit_allocation(a.results, out)
    hardware(a.results, out, a.hw_baseline)
    hardware_vs_paper(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
