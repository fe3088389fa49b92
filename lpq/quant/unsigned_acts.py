"""quant.unsigned_acts: activations that are never negative get the unsigned variant of their family.

A layer input that is non-negative over the whole calibration set (a ReLU / ReLU6 output, attention
probabilities) loses a whole bit to the sign in every signed format; at 4 bits that halves its positive levels.
With `auto`, such an input gets its family's unsigned variant at the same width (`lpq.formats.unsigned_variant`:
lp -> ulp, int -> uint, fp -> ufp, posit -> uposit, af -> uaf, lns -> ulns, ANT types -> their unsigned types),
for uniform formats and for the search's genes alike; `off` keeps every format signed. The decision reads the exact
minimum of each tensor collected with the calibration statistics. At evaluation time a negative value reaching an
unsigned unit (an input the calibration set never drove below zero) is clamped to 0 by the format and counted
(`metrics.json`: `unsigned_clamped`).
"""
from __future__ import annotations

import numpy as np

from ..formats.unsigned import unsigned_variant
from .ptq import MIN_SUFFIX

MODES = ("auto", "off")


def mode_of(value) -> str:
    """quant.unsigned_acts as 'auto' or 'off' (YAML false/null read as off)."""
    if value is None or value is False:
        return "off"
    text = str(value).strip().lower()
    if text not in MODES:
        raise ValueError(f"quant.unsigned_acts={value!r} is invalid: need auto (non-negative inputs get the unsigned "
                         f"variant of their family) or off")
    return text


def is_nonnegative(stats: dict, unit: str, side: str) -> bool:
    """True when the tensor never went below zero on the calibration set (exact minimum; statistics of an older
    calib.pt without it fall back to the minimum of the stored sample)."""
    low = stats.get((unit, side + MIN_SUFFIX))
    if low is None:
        low = stats.get((unit, side))
    return low is not None and np.size(low) > 0 and float(np.min(low)) >= 0.0


def activation_template(a_format: str, stats: dict, unit: str, side: str, mode: str) -> str:
    """The format (template) an activation side gets: the unsigned variant under `auto` when non-negative."""
    text = str(a_format)
    if mode == "auto" and text.strip().lower() not in ("none", "fp32", "") and is_nonnegative(stats, unit, side):
        return unsigned_variant(text)
    return text


def summary(counts: dict | None) -> dict:
    """metrics.json keys for the unsigned activation units of an evaluation: how many there are and how many
    negative values they clamped to 0 (in all, as a fraction of their values, and the worst unit); {} without any."""
    if not counts:
        return {}
    neg = sum(n for n, _ in counts.values())
    total = sum(t for _, t in counts.values())
    worst = max(counts, key=lambda k: counts[k][0] / max(1, counts[k][1]))
    out = {"unsigned_units": len(counts), "unsigned_clamped": int(neg),
           "unsigned_clamped_fraction": float(neg / total) if total else 0.0}
    if neg:
        out["unsigned_clamped_worst"] = {"unit": worst[0], "side": worst[1],
                                         "fraction": float(counts[worst][0] / max(1, counts[worst][1]))}
    return out
