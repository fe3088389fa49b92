"""Output forms of a hwsim run (HWMODEL §8): layers.csv rows and the comparison figure.

Values are rendered deterministically (shortest round-trip floats, `true`/`false`, empty for
absent values) so identical inputs give byte-identical files; writing them atomically is the
caller's job (`lpq hwsim` uses lpq.pipeline.atomic).
"""
from __future__ import annotations

import csv
import io
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LAYER_COLUMNS = (
    "name", "op", "M", "N", "K", "count", "batch", "b_a", "b_w", "b_a_lane", "b_w_lane", "P", "family_a", "family_w",
    "unquantized", "dataflow", "R", "C", "folds_row", "folds_col", "compute_cycles", "stall_cycles", "total_cycles",
    "macs", "overall_util_pct", "lane_util_pct", "mapping_eff_pct", "compute_util_pct",
    "sram_ifmap_reads_bytes", "sram_ifmap_writes_bytes", "sram_filter_reads_bytes", "sram_filter_writes_bytes",
    "obuf_reads_bytes", "obuf_writes_bytes", "dram_reads_bytes", "dram_writes_bytes",
    "e_mac_pj", "e_leak_pj", "e_reg_pj", "e_decode_pj", "e_post_pj", "e_sram_pj", "e_dram_pj", "e_static_pj",
    "e_total_pj", "tiling",
)
NORM_METRICS = (("speedup", "speed-up"), ("perf_per_area", "perf / area"), ("energy_eff", "energy efficiency"))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def layers_csv(layers: list[dict]) -> str:
    """layers.csv text: header `LAYER_COLUMNS`, one row per record."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LAYER_COLUMNS)
    for row in layers:
        writer.writerow(_cell(row.get(col)) for col in LAYER_COLUMNS)
    return buf.getvalue()


def comparison_figure(summary: dict) -> "Figure":
    """Grouped bars of the `norm.<baseline>` ratios (speed-up, performance per area, energy
    efficiency; > 1 favours the simulated design). Returns a matplotlib Figure (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    norm = summary.get("norm", {})
    meta = summary.get("meta", {})
    baselines = list(norm)
    fig = Figure(figsize=(max(4.0, 1.6 + 1.3 * len(baselines)), 3.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(NORM_METRICS)
    for i, (key, label) in enumerate(NORM_METRICS):
        xs = [j + (i - (len(NORM_METRICS) - 1) / 2) * width for j in range(len(baselines))]
        vals = [norm[b][key] for b in baselines]
        bars = ax.bar(xs, vals, width, label=label)
        for bar, v in zip(bars, vals):
            ax.annotate(f"{v:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(baselines)))
    ax.set_xticklabels([f"vs {b}" for b in baselines])
    ax.set_ylabel("ratio (design / baseline)")
    ax.set_title(f"{meta.get('design', '?')} on {meta.get('model', '?')} (batch {meta.get('batch', '?')}, "
                 f"{meta.get('profile', '?')})", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def save_figure(fig: "Figure", path: str | os.PathLike) -> None:
    """PNG without time-dependent metadata (byte-identical for identical inputs)."""
    fig.savefig(path, format="png", metadata={"Software": None})
