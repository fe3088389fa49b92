"""Per-tensor scale calibration rules for every format (BASELINE-FORMATS §1.3).

`calibrate_sf(fmt, x, rule)` returns the scale exponent sf (scale 2^-sf) of a tensor x under
one of the rules 'absmax', 'median', 'mse', 'pow2max', 'antclip'; `default_rule(fmt)` names
the family's default. max|x| and the median use every finite element; MSE searches use a
seeded subsample of at most 2^20 elements and are vectorised over candidate scales.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from .base import Format
from .baseline import SF_LIMIT
from .exact import Pow2
from .grid_mse import grid_mse, sort_magnitudes
from .lp import LPFormat
from .spec import parse

RULES = ("absmax", "median", "mse", "pow2max", "antclip")
DEFAULT_RULES: dict[str, str] = {
    "int": "mse", "uint": "mse", "fp": "mse", "posit": "mse", "lns": "mse", "af": "pow2max",
    "flint": "antclip", "pot": "antclip", "uflint": "antclip", "upot": "antclip",
    "ant": "antclip", "uant": "antclip", "lp": "median",
    # unsigned variants (lpq/formats/unsigned.py): their signed family's rule
    "ufp": "mse", "uposit": "mse", "uaf": "pow2max", "ulns": "mse", "ulp": "median",
}
MEDIAN_INIT_FAMILIES = ("posit", "lp", "uposit", "ulp")  # tapered formats: mse starts from the median rule
MSE_STEP = 16  # candidates sf_init + j/16
MSE_J = {"absmax": (-8, 48), "median": (-32, 32)}
SUBSAMPLE_MAX = 1 << 20
ANTCLIP_PERCENT = {"low_bits": (75, 149), "high_bits": (95, 149)}  # alpha = k/100, k inclusive
ANTCLIP_HIGH_BITS = 7
CHUNK_ELEMENTS = 1 << 22  # candidate x element block evaluated at once in the mse search
SHORTLIST_MIN_ELEMENTS = 4096  # below this, every candidate is evaluated exactly


def default_rule(fmt: Format | str) -> str:
    """The family's default scale rule (§1.3 defaults table)."""
    fmt = parse(fmt) if isinstance(fmt, str) else fmt
    rule = DEFAULT_RULES.get(fmt.family)
    if rule is None:
        raise ValueError(f"family={fmt.family!r} of {fmt.spec} has no default scale rule; known: {', '.join(DEFAULT_RULES)}")
    return rule


def calibrate_sf(fmt: Format | str, x: Any, rule: str, *, seed: int = 0) -> float:
    """The scale exponent sf of `rule` for tensor x (§1.3), clamped to |sf| <= 126."""
    fmt = parse(fmt) if isinstance(fmt, str) else fmt
    _check_calibratable(fmt)
    values = _finite_values(x)
    if rule == "absmax":
        sf = _absmax(fmt, values)
    elif rule == "median":
        sf = _median(values)
    elif rule == "pow2max":
        peak = _peak(values)
        sf = 0.0 if peak == 0 else -float(np.frexp(peak)[1] - 1)  # -floor(log2 max|x|), exact
    elif rule == "mse":
        sf = _mse_search(fmt, values, seed)
    elif rule == "antclip":
        sf = antclip_search(fmt, values, seed=seed)[0]
    else:
        raise ValueError(f"rule={rule!r} is invalid: need one of {', '.join(RULES)}")
    return _clamp(sf)


def antclip_search(fmt: Format | str, x: Any, *, seed: int = 0) -> tuple[float, float]:
    """ANT's clip search (§1.3 `antclip`): (sf, MSE) for the clip c = alpha*max|x| of lowest
    MSE, alpha in {0.75, ..., 1.49} ({0.95, ...} for n >= 7); ties keep the smaller alpha."""
    fmt = parse(fmt) if isinstance(fmt, str) else fmt
    _check_calibratable(fmt)
    values = _finite_values(x)
    peak = _peak(values)
    sample = calibration_sample(values, seed)
    if peak == 0:
        return 0.0, float(quantization_mse(fmt, sample, np.zeros(1))[0])
    lo, hi = ANTCLIP_PERCENT["high_bits" if fmt.bits >= ANTCLIP_HIGH_BITS else "low_bits"]
    clips = np.arange(lo, hi + 1, dtype=np.float64) / 100 * peak
    sfs = _clamp(_log2_max_over(fmt, clips))
    return _best_sf(fmt, sample, sfs)  # candidates in alpha order: the smallest alpha wins ties


def calibration_sample(x: Any, seed: int = 0) -> np.ndarray:
    """Finite float32 elements of x, subsampled without replacement to at most 2^20 with
    numpy.random.default_rng(seed) (kept in tensor order)."""
    values = _finite_values(x)
    if values.size <= SUBSAMPLE_MAX:
        return values
    idx = np.random.default_rng(seed).choice(values.size, SUBSAMPLE_MAX, replace=False)
    return values[np.sort(idx)]


def quantization_mse(fmt: Format, sample: np.ndarray, sfs: np.ndarray) -> np.ndarray:
    """mean((quantize_sf(x) - x)^2) for every candidate sf, evaluated as §1.2 in float32."""
    sfs = np.atleast_1d(np.asarray(sfs, dtype=np.float64))
    sample = np.asarray(sample, dtype=np.float32).ravel()
    out = np.zeros(sfs.shape)
    if sample.size == 0:
        return out
    sample = sample[np.argsort(np.abs(sample), kind="stable")]  # sorted keys: searchsorted runs ~5x faster
    x64 = sample.astype(np.float64)
    if not fmt.sf_is_external:  # LP: sf is part of the format, one table per candidate
        for i, sf in enumerate(sfs):
            out[i] = _mse_of(_lp_with_sf(fmt, float(sf)), sample, x64)
        return out
    r = (2.0 ** sfs).astype(np.float32)
    s = (2.0 ** -sfs).astype(np.float32)
    per = max(1, CHUNK_ELEMENTS // sample.size)
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(0, sfs.size, per):
            y = sample[None, :] * r[i:i + per, None]
            q = fmt._quantize_grid(y) * s[i:i + per, None]
            err = q.astype(np.float64) - x64[None, :]
            out[i:i + per] = np.mean(err * err, axis=1)
    return np.where(np.isnan(out), np.inf, out)


# ---- rules ------------------------------------------------------------------------------

def _absmax(fmt: Format, values: np.ndarray) -> float:
    peak = _peak(values)
    return 0.0 if peak == 0 else float(_log2_max_over(fmt, np.float64(peak)))


def _median(values: np.ndarray) -> float:
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return 0.0
    return -float(np.median(np.log2(np.abs(nonzero.astype(np.float64)))))


def _mse_search(fmt: Format, values: np.ndarray, seed: int) -> float:
    init_rule = "median" if fmt.family in MEDIAN_INIT_FAMILIES else "absmax"
    init = _clamp(_median(values) if init_rule == "median" else _absmax(fmt, values))
    lo, hi = MSE_J[init_rule]
    js = sorted(range(lo, hi + 1), key=lambda j: (abs(j), j))  # tie order: smallest |j|, then smaller j
    sfs = _clamp(init + np.array(js, dtype=np.float64) / MSE_STEP)
    return _best_sf(fmt, calibration_sample(values, seed), sfs)[0]


def _best_sf(fmt: Format, sample: np.ndarray, sfs: np.ndarray) -> tuple[float, float]:
    """(sf, MSE) of the candidate with the smallest exact `quantization_mse`; on ties the
    earliest candidate. Signed formats with external scales first rank every candidate with
    the sorted-prefix `grid_mse` (float64, no float32 rounding) and evaluate exactly only the
    candidates within 1e-6 (relative) of the best approximate MSE, and at least the best 4."""
    keep = np.arange(sfs.size)
    if fmt.signed and fmt.sf_is_external and sample.size > SHORTLIST_MIN_ELEMENTS and sfs.size > 4:
        tab = fmt.table(np.float64)
        scale = np.exp2(-sfs)[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            approx = grid_mse(sort_magnitudes(sample), (tab.values[None, :] * scale)[None],
                              (tab.thresholds[None, :] * scale)[None])[0]
        approx = np.where(np.isfinite(approx), approx, np.inf)
        best = approx.min()
        if np.isfinite(best):
            near = np.nonzero(approx <= best * (1 + 1e-6) + 1e-300)[0]
            keep = np.union1d(near, np.argsort(approx, kind="stable")[:4])
    mse = quantization_mse(fmt, sample, sfs[keep])
    i = int(np.argmin(mse))  # first minimum = earliest candidate among equals
    return float(sfs[keep[i]]), float(mse[i])


# ---- helpers ----------------------------------------------------------------------------

def _check_calibratable(fmt: Format) -> None:
    if fmt.family in ("ant", "uant"):
        raise ValueError(f"{fmt.spec} is adaptive: use choose_ant_type to pick its type and scale")


def _finite_values(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"x must be a real array, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False).ravel()
    return arr if np.isfinite(arr).all() else arr[np.isfinite(arr)]


def _peak(values: np.ndarray) -> float:
    return float(np.max(np.abs(values))) if values.size else 0.0


def _log2_max_over(fmt: Format, c: Any) -> Any:
    """log2(max(Q0) / c), Q0 the unscaled code book (for LP: its sf = 0 code book)."""
    top = fmt.grid.magnitudes[-1]
    if isinstance(top, Pow2):
        exponent = top.exponent + (0 if fmt.sf_is_external else Fraction(fmt.sf))
        if exponent.denominator != 1:  # irrational max: use its exact exponent
            return float(exponent) - np.log2(c)
        top = Fraction(2) ** int(exponent)
    return np.log2(float(top) / c)


def _clamp(sf: Any) -> Any:
    """Clamp sf (scalar or array) to |sf| <= 126 (§1.2); -0.0 becomes 0.0."""
    if np.ndim(sf):
        return np.clip(sf, -SF_LIMIT, SF_LIMIT) + 0.0
    return float(min(max(sf, -SF_LIMIT), SF_LIMIT)) + 0.0


def _lp_with_sf(fmt: LPFormat, sf: float) -> LPFormat | None:
    try:
        return LPFormat(fmt.n, fmt.es, fmt.rs, sf, round=fmt.round, underflow=fmt.underflow)
    except ValueError:  # outside LP's float32 range: not a usable candidate
        return None


def _mse_of(fmt: Format | None, sample: np.ndarray, x64: np.ndarray) -> float:
    if fmt is None:
        return math.inf
    err = fmt.quantize_reference(sample).astype(np.float64) - x64
    return float(np.mean(err * err))
