"""Technology-node scaling of energy and area (HWMODEL §5.4).

Factors to 28 nm from Stillmaker & Baas (Integration 2017) as used by Accelergy's scaling
utilities; 28 nm is interpolated between their 32 and 20 nm rows. A factor between two tabulated
nodes is the ratio of their factors to 28 nm.
"""
from __future__ import annotations

# node (nm) -> {vdd (V): energy factor to 28 nm}; the 0.8 V column is used where no other exists
ENERGY_TO_28 = {
    45: {0.8: 0.513, 0.9: 0.507, 1.0: 0.506},
    40: {0.8: 0.59},
    65: {0.8: 0.41},
    32: {0.8: 0.78},
    28: {0.8: 1.0, 0.9: 1.0, 1.0: 1.0},
}
AREA_TO_28 = {45: 0.377, 40: 0.55, 65: 0.25, 32: 0.82, 28: 1.0}
DEFAULT_VDD = 0.8


def _check_node(node: int, table: dict, param: str) -> int:
    if node not in table:
        raise ValueError(f"{param}={node!r} is not a tabulated node: need one of {sorted(table)} nm")
    return node


def energy_factor(from_nm: int, to_nm: int, vdd: float | None = None) -> float:
    """Multiplier taking an energy at `from_nm` to `to_nm` (same supply column `vdd`)."""
    if from_nm == to_nm:
        return 1.0
    v = DEFAULT_VDD if vdd is None else float(vdd)

    def to28(node: int) -> float:
        col = ENERGY_TO_28[_check_node(node, ENERGY_TO_28, "node_nm")]
        return col.get(v, col[DEFAULT_VDD])

    return to28(from_nm) / to28(to_nm)


def scale_energy(e: float, from_nm: int, to_nm: int, vdd: float | None = None) -> float:
    """Energy per action scaled between nodes (§5.4); independent of the clock."""
    return float(e) * energy_factor(from_nm, to_nm, vdd)


def scale_area(a: float, from_nm: int, to_nm: int) -> float:
    """Area scaled between nodes (§5.4)."""
    if from_nm == to_nm:
        return float(a)
    return float(a) * AREA_TO_28[_check_node(from_nm, AREA_TO_28, "node_nm")] / AREA_TO_28[_check_node(to_nm, AREA_TO_28, "node_nm")]
