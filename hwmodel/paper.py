"""The authors' DAC'24 poster hardware numbers next to this model's profiles (PAPER-RESULTS §3).

ResNet-50 and ViT-B/16 run as the ANT (MICRO'22) artifact lists them (`conf/hw/ant_networks.yaml`:
weight GEMMs, the artifact's per-layer widths for ANT, BitFusion and AdaFloat). LPA runs ANT's
per-layer widths [assumption: LPQ's per-layer LP widths are not published; ANT's are the only
published mixed 4/8 assignment for these networks, and both stay within ≈1 pp of FP32]. Latency
and energy are normalised to AdaptivFloat on the same network and profile, as on the poster.
"""
from __future__ import annotations

import copy
import functools

from .ant_networks import load_ant_networks
from .config import load_hw
from .dac24 import chart_rows
from .simulate import simulate

DESIGNS = ("lpa", "ant", "bitfusion", "adafloat")
MODELS = {"resnet50": "ResNet-50", "vit": "ViT-B/16"}
PROFILES = ("dac24", "default28", "ant_compat")
LPA_PRECISION = "ant"  # LPA runs the ANT artifact's per-layer widths (module docstring)


def workload_ratios(profile: str, batch: int = 64, models=tuple(MODELS)) -> dict:
    """{model: {design: {latency, energy, latency_ms, energy_mj}}} normalised to AdaptivFloat."""
    nets = load_ant_networks()
    out = {}
    for model in models:
        if model not in nets:
            raise ValueError(f"model={model!r} is not in conf/hw/ant_networks.yaml: known {', '.join(nets)}")
        sums = {}
        for design in DESIGNS:
            hw = load_hw(design, profile, [f"batch={batch}"])
            records, precisions = nets[model].workload(hw.design, LPA_PRECISION if design == "lpa" else None)
            sums[design] = simulate(records, precisions, hw, model).summary
        base = sums["adafloat"]
        out[model] = {d: {"latency": s["cycles"]["total"] / base["cycles"]["total"],
                          "energy": s["energy_pj"]["total"] / base["energy_pj"]["total"],
                          "latency_ms": s["latency_ms"], "energy_mj": s["energy_pj"]["total"] / 1e9,
                          "array": "x".join(str(v) for v in s["meta"]["array"])}
                      for d, s in sums.items()}
    return out


def _ratio(value: float | None, poster: float | None) -> float | None:
    return None if value is None or not poster else round(value / poster, 3)


def comparison_rows(batch: int = 64) -> list[dict]:
    """hardware_vs_paper rows: per model × design × metric the poster value, `dac24`, `default28`,
    `ant_compat` and dac24 / poster; first the compute-density chart and the PE-type ablation
    (memoised per batch: a call runs 24 whole-network simulations, ≈5 s)."""
    if batch < 1:
        raise ValueError(f"batch={batch} is invalid: need a positive integer")
    return copy.deepcopy(list(_comparison_rows(int(batch))))


@functools.lru_cache(maxsize=4)
def _comparison_rows(batch: int) -> tuple[dict, ...]:
    dac = load_hw("lpa", "dac24").profile
    poster = dac.extra["poster"]
    rows = []
    for section, label in (("chart", "compute density"), ("ablation", "PE-type ablation")):
        for bar in chart_rows(dac, section):
            rows.append({"model": label, "design": bar["bar"], "metric": "TOPS/mm2",
                         "poster": bar["poster_tops_per_mm2"], "dac24": round(bar["tops_per_mm2"], 3),
                         "default28": None, "ant_compat": None,
                         "dac24_over_poster": _ratio(bar["tops_per_mm2"], bar["poster_tops_per_mm2"])})
    ratios = {p: workload_ratios(p, batch) for p in PROFILES}
    for model, label in MODELS.items():
        for metric in ("latency", "energy"):
            for design in DESIGNS:
                vals = {p: ratios[p][model][design][metric] for p in PROFILES}
                ref = poster[metric][model][design]
                rows.append({"model": label, "design": design, "metric": f"{metric} vs adafloat", "poster": ref,
                             **{p: round(v, 3) for p, v in vals.items()},
                             "dac24_over_poster": _ratio(vals["dac24"], ref)})
    return tuple(rows)
