"""Table-driven energy engine (HWMODEL §5.1) and the report groups of §5.2 / §8.

E = Σ_actions count(action) × e(action). The engine knows nothing about designs: models produce
action counts and look up per-action energies; bookkeeping is tested separately from constants.
"""
from __future__ import annotations

from typing import Mapping

# layers.csv energy columns (§8) -> the actions they sum
LAYER_GROUPS = {
    "e_mac_pj": ("mac",),
    "e_leak_pj": ("leak",),
    "e_reg_pj": ("reg_move", "stationary_load"),
    "e_decode_pj": ("decode_a", "decode_w", "encode"),
    "e_post_pj": ("postproc",),
    "e_sram_pj": ("ibuf_read", "ibuf_write", "wbuf_read", "wbuf_write", "obuf_read", "obuf_write"),
    "e_dram_pj": ("dram_read", "dram_write"),
    "e_static_pj": ("static",),
}


def evaluate(counts: Mapping[str, float], energies: Mapping[str, float]) -> dict[str, float]:
    """Energy per action: count × energy per action (§5.1). Every counted action needs an energy."""
    missing = sorted(set(counts) - set(energies))
    if missing:
        raise ValueError(f"actions {missing} have counts but no energy per action; known: {sorted(energies)}")
    return {action: float(count) * float(energies[action]) for action, count in counts.items()}


def layer_groups(per_action: Mapping[str, float]) -> dict[str, float]:
    """The §8 per-layer energy columns (pJ), `e_total_pj` included."""
    known = {a for acts in LAYER_GROUPS.values() for a in acts}
    unknown = sorted(set(per_action) - known)
    if unknown:
        raise ValueError(f"actions {unknown} belong to no report group")
    out = {col: sum(per_action.get(a, 0.0) for a in acts) for col, acts in LAYER_GROUPS.items()}
    out["e_total_pj"] = sum(out.values())
    return out


def summary_groups(layers: list[Mapping[str, float]]) -> dict[str, float]:
    """`energy_pj.{mac, register, compute, sram, dram, static, total}` (§8) from layer rows."""
    def total(col: str) -> float:
        return sum(float(row[col]) for row in layers)

    compute = sum(total(c) for c in ("e_mac_pj", "e_leak_pj", "e_reg_pj", "e_decode_pj", "e_post_pj"))
    out = {"mac": total("e_mac_pj"), "register": total("e_reg_pj"), "compute": compute,
           "sram": total("e_sram_pj"), "dram": total("e_dram_pj"), "static": total("e_static_pj")}
    out["total"] = out["compute"] + out["sram"] + out["dram"] + out["static"]
    return out
