"""Resolve format templates to concrete quantizers from data (LPQ §3, BASELINE-FORMATS §1.3).

- `lp<n,*,*,*>` (any parameter may be `*`): the I_mse rule of LPQ §3 — es in 0..min(3, n-2),
  rs in 1..n-1, sf in sf0 + j/8 (j = -16..16) with sf0 = -median(log2|x|) snapped to 2^-8;
  the candidate with the smallest MSE wins (ties: smaller es, then rs, then |j|).
- a baseline without a scale (`int<8>`, `fp8_e4m3`, `posit<4,1>`, ...): its family's default
  scale rule (BASELINE-FORMATS §1.3); `ant<n>`: ANT's type choice (per channel: the chosen
  type with ANT's `antclip` rule per channel, for int too).
- per channel (weights, `quant.per_channel=true`): one sf per output channel, structural
  parameters shared; written as `<format>@ch` with the sf vector beside it. LP's per-channel sf
  candidates add the peak window and the points between it and the median window (`sf_candidates`;
  this project's extension of the I_mse rule, measured on MobileNet depthwise kernels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formats import parse
from ..formats.grid_mse import SortedMagnitudes, grid_mse, sort_magnitudes
from ..formats.lp import F32_MAX_EXP, F32_MIN_EXP, lp_log_values, lp_range
from ..formats.spec import format_real, split_spec
from ..formats.unsigned import is_unsigned
from .quantizer import channel_spec

SF_STEP = 2.0 ** -8
SF_OFFSETS = np.arange(-16, 17) / 8.0
_BY_DISTANCE = np.argsort(np.abs(SF_OFFSETS), kind="stable")  # median window, |j| ascending
SF_BETWEEN = 31  # candidates between the median and peak anchors (sf_candidates)
ES_MAX = 3


@dataclass(frozen=True)
class Resolved:
    spec: str  # resolved quantizer string (no '*')
    channel_sf: list[float] | None = None


def snap(value: float, step: float = SF_STEP) -> float:
    return float(np.round(value / step) * step) if step else float(value)


def median_sf(rows: SortedMagnitudes) -> np.ndarray:
    """-median(log2|x|) per row over nonzero elements, snapped to 2^-8 (0 for empty rows)."""
    return np.array([snap(-m) for m in rows.median_log2()])


def sf_candidates(rows: SortedMagnitudes, sf0: np.ndarray) -> np.ndarray:
    """[R, K] candidate sf per row, in tie-break order: the median window sf0 + j/8 (j = -16..16, |j| ascending; LPQ
    §3), then the peak window sfp + j/8 with sfp = -log2(max|x|) (the largest magnitude at the centre of the code
    book, where a tapered format is most precise), then 31 points between the two anchors on the same 1/8 grid.
    The median window alone (±2 octaves) cannot reach the least-MSE scale of a row whose few large values carry
    the error, e.g. a 3x3 depthwise kernel with one dominant tap (MobileNet: max/median of 24 left that tap at
    ~1 fraction bit of lp<8,0,7>; docs/results.md)."""
    med = sf0[:, None] + SF_OFFSETS[_BY_DISTANCE][None, :]
    peak = rows.peak()
    sfp = np.where(peak > 0, -np.log2(np.where(peak > 0, peak, 1.0)), sf0)
    sfp = np.round(sfp / SF_STEP) * SF_STEP
    at_peak = sfp[:, None] + SF_OFFSETS[_BY_DISTANCE][None, :]
    frac = np.linspace(0.0, 1.0, SF_BETWEEN + 2)[1:-1]
    between = sf0[:, None] + np.round((sfp - sf0)[:, None] * frac[None, :] * 8) / 8
    return np.concatenate([med, at_peak, between], axis=1)


def _lp_candidates(n: int, es_opt: int | None, rs_opt: int | None):
    es_list = [es_opt] if es_opt is not None else list(range(0, min(ES_MAX, max(0, n - 2)) + 1))
    rs_list = [rs_opt] if rs_opt is not None else list(range(1, n))
    return [(es, rs) for es in es_list for rs in rs_list]


def calibrate_lp(rows: SortedMagnitudes, n: int, es: int | None = None, rs: int | None = None,
                 sf: float | None = None, wide: bool = False) -> tuple[int, int, np.ndarray]:
    """Best (es, rs) shared by all rows and the best sf per row, by quantization MSE. sf candidates: LPQ §3's median
    window sf0 + j/8, or with `wide` (per-channel rows: `resolve(..., per_channel=True)` and the search's channel
    vectors) also the peak window and the points between (`sf_candidates`). A per-channel row can be 9 values (a
    3x3 depthwise kernel) whose median is no anchor for its dominant tap; per-tensor samples keep the median window,
    which measured better at 4 bits on ResNet-32 (docs/results.md)."""
    R = rows.rows
    sf0 = median_sf(rows)
    if sf is not None:
        sf_cand = np.full((R, 1), float(sf))
    else:  # [R, K] in preference order (exact MSE ties keep the earliest)
        sf_cand = sf_candidates(rows, sf0) if wide else sf0[:, None] + SF_OFFSETS[_BY_DISTANCE][None, :]
    best = None
    for es_c, rs_c in _lp_candidates(n, es, rs):
        t = np.array([float(v) for v in lp_log_values(n, es_c, rs_c)])
        T = float(lp_range(n, es_c, rs_c))
        mids = (t[:-1] + t[1:]) / 2
        valid = (-T - sf_cand >= F32_MIN_EXP) & (T - sf_cand <= F32_MAX_EXP)
        vals = np.exp2(t[None, None, :] - sf_cand[..., None])
        thr = np.exp2(mids[None, None, :] - sf_cand[..., None])
        mse = grid_mse(rows, vals, thr)
        mse = np.where(valid, mse, np.inf)
        k = np.argmin(mse, axis=1)  # first minimum: the earliest candidate in preference order wins exact ties
        row_best = mse[np.arange(R), k]
        weights = rows.totals
        total = float(np.sum(row_best * weights))
        if best is None or total < best[0]:
            best = (total, es_c, rs_c, sf_cand[np.arange(R), k])
    if best is None or not np.isfinite(best[0]):
        raise ValueError(f"no lp<{n},...> candidate fits the float32 emulation range for this tensor")
    return best[1], best[2], best[3]


def _rows(x: np.ndarray, per_channel: bool) -> list[np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    if per_channel and x.ndim >= 2:
        return [x[c].ravel() for c in range(x.shape[0])]
    return [x.ravel()]


def resolve(template: str, x: np.ndarray, per_channel: bool = False, seed: int = 0) -> Resolved | None:
    """A concrete quantizer for tensor samples x ('none' -> None)."""
    text = template.strip()
    if text.lower() in ("none", "fp32", ""):
        return None
    parsed = split_spec(text)
    if is_unsigned(text):  # negative inputs quantize to 0 whatever the scale: calibrate on max(x, 0)
        x = np.maximum(np.asarray(x, dtype=np.float32), np.float32(0))
    if parsed.name in ("lp", "ulp"):
        parsed.expect_args("n", "es", "rs", "sf")
        if "*" in parsed.args[0]:
            raise ValueError(f"{template!r}: n cannot be '*' (it is the bit width to calibrate for)")
        if "*" not in parsed.args and not per_channel:
            return Resolved(parse(text).spec)
        name = parsed.name
        grid_n = int(parsed.args[0]) + (name == "ulp")  # ulp<n> is the non-negative half of lp<n+1>
        n = int(parsed.args[0])
        es = None if parsed.args[1] == "*" else int(parsed.args[1])
        rs = None if parsed.args[2] == "*" else int(parsed.args[2])
        sf = None if parsed.args[3] == "*" else float(parsed.args[3])
        opts = "".join(f",{k}={v}" for k, v in parsed.options)
        rows = sort_magnitudes(_rows(x, per_channel))
        if per_channel:
            es_b, rs_b, sfs = calibrate_lp(rows, grid_n, es, rs, None if sf is None else 0.0, wide=True)
            if sf is not None:  # concrete sf: per-channel sf from the median rule, the given sf as offset
                sfs = median_sf(rows) + sf
            base = parse(f"{name}<{n},{es_b},{rs_b},0{opts}>").spec
            return Resolved(channel_spec(base), [float(v) for v in sfs])
        es_b, rs_b, sfs = calibrate_lp(rows, grid_n, es, rs, sf)
        return Resolved(parse(f"{name}<{n},{es_b},{rs_b},{format_real(sfs[0])}{opts}>").spec)
    from ..formats import calibrate as base_cal

    rule = None
    if parsed.name in ("ant", "uant"):
        n = parsed.int_arg(0, "n")
        chosen = base_cal_choose(x, n, parsed.name == "uant")
        if not per_channel:
            return Resolved(chosen)
        text = chosen.partition("@")[0]
        parsed = split_spec(text)
        rule = "antclip"  # ANT's own scale rule for every type it chose, int included (BASELINE-FORMATS §1.3)
    if parsed.sf_text is not None:
        if per_channel:
            raise ValueError(f"{template!r} has a fixed scale; per-channel quantization calibrates one scale per channel")
        return Resolved(parse(text).spec)
    fmt = parse(text)
    rule = rule or base_cal.default_rule(fmt)
    sfs = [base_cal.calibrate_sf(fmt, r, rule, seed=seed) for r in _rows(x, per_channel)]
    if per_channel:
        return Resolved(channel_spec(fmt.spec), [float(v) for v in sfs])
    return Resolved(parse(f"{fmt.spec}@{format_real(sfs[0])}").spec if sfs[0] != 0 else fmt.spec)


def base_cal_choose(x: np.ndarray, n: int, unsigned: bool) -> str:
    from ..formats.ant import choose_ant_type

    return choose_ant_type(np.asarray(x, dtype=np.float32).ravel(), n, unsigned=unsigned)
