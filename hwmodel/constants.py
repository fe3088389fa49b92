"""Constant tables with sources (HWMODEL §0, §5.3, §6.1, §7.3, §7.4).

Every numeric constant is one entry of a table under `conf/hw/profile/`:
`{value, unit, node_nm, vdd, source, note}` stored at its source node, or a derived entry
`{ratio, of, source, note}` (ratio × another entry, e.g. LP PE = 0.96 × fused INT PE). Loading
converts units to canonical ones (pJ per action, pJ/bit for memories and registers, pJ/cycle for
leakage, µm² for areas) and scales to the profile's node (§5.4); `node_nm: null` (DRAM, or a whole
profile that uses constants unscaled) means no scaling.
"""
from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from typing import Mapping

from .scaling import scale_area, scale_energy

# unit -> (canonical unit, kind, multiplier); kinds: energy (node-scaled), area, power, plain
_UNITS = {
    "pJ": ("pJ", "energy", 1.0),
    "pJ/bit": ("pJ/bit", "energy", 1.0),
    "pJ/B": ("pJ/bit", "energy", 1.0 / 8),
    "pJ/access": ("pJ/bit", "energy", None),  # divided by 8·access_bytes
    "pJ/cycle": ("pJ/cycle", "energy", 1.0),
    "nJ/cycle": ("pJ/cycle", "energy", 1e3),
    "mW": ("pJ/cycle", "power", 1e-3),
    "nW": ("pJ/cycle", "power", 1e-9),
    "um2": ("um2", "area", 1.0),
    "mm2": ("um2", "area", 1e6),
    "1": ("1", "plain", 1.0),
}
ENTRY_KEYS = {"value", "unit", "node_nm", "vdd", "source", "note", "access_bytes", "ratio", "of"}


def _ratio(value) -> float:
    if isinstance(value, str):
        return float(Fraction(value.replace(" ", "")))
    return float(value)


def _convert(name: str, entry: Mapping, node_nm: int | None, clock_hz: float) -> tuple[float, str]:
    unit = entry.get("unit")
    if unit not in _UNITS:
        raise ValueError(f"constant {name!r}: unit={unit!r} is invalid: need one of {', '.join(_UNITS)}")
    canonical, kind, mult = _UNITS[unit]
    value = float(entry["value"])
    if mult is None:
        nbytes = entry.get("access_bytes")
        if not nbytes:
            raise ValueError(f"constant {name!r}: unit pJ/access needs access_bytes")
        value /= 8.0 * float(nbytes)
    elif kind == "power":
        value = value * mult / clock_hz * 1e12  # W / Hz = J per cycle -> pJ per cycle
    else:
        value *= mult
    src = entry.get("node_nm")
    if src is not None and node_nm is not None:
        if kind in ("energy", "power"):
            value = scale_energy(value, int(src), int(node_nm), entry.get("vdd"))
        elif kind == "area":
            value = scale_area(value, int(src), int(node_nm))
    return value, canonical


def load_table(raw: Mapping[str, Mapping], node_nm: int | None, clock_hz: float) -> dict[str, float]:
    """Entry name -> value in canonical units at `node_nm` (None: unscaled)."""
    out: dict[str, float] = {}
    units: dict[str, str] = {}

    def resolve(name: str, seen: tuple[str, ...] = ()) -> float:
        if name in out:
            return out[name]
        if name not in raw:
            raise ValueError(f"constant {name!r} is not in the table (needed by {seen[-1] if seen else 'the model'})")
        if name in seen:
            raise ValueError(f"constant {name!r} is defined in terms of itself: {' -> '.join(seen + (name,))}")
        entry = raw[name]
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            raise ValueError(f"constant {name!r} has unknown fields {sorted(unknown)}: allowed {sorted(ENTRY_KEYS)}")
        if not entry.get("source"):
            raise ValueError(f"constant {name!r} has no source")
        if "ratio" in entry:
            base = resolve(str(entry["of"]), seen + (name,))
            out[name], units[name] = _ratio(entry["ratio"]) * base, units[str(entry["of"])]
        else:
            out[name], units[name] = _convert(name, entry, node_nm, clock_hz)
        return out[name]

    for key in raw:
        resolve(key)
    return out


def table_hash(*tables: Mapping) -> str:
    """sha256 (16 hex) of the raw tables, for `meta.constants_hash` (§8)."""
    text = json.dumps([dict(t) for t in tables], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
