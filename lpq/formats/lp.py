"""Logarithmic Posit LP<n, es, rs, sf> (LP-FORMAT.md, normative).

A positive code is | regime (run capped at rs) | exponent (es bits, zero-padded) | log
fraction (F bits) |; its stored log value is t = 2^es*k + e + f/2^F and its value 2^(t - sf).
Negative codes are two's complements; 0 is zero and 2^(n-1) is NaR. Rounding is nearest in
the log domain (ties to the even code) or, optionally, nearest in value.
"""
from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from .base import Format, Grid, Neg, even_tie_up
from .exact import Mean2, Pow2
from .spec import ParsedSpec, format_real, parse_real, register_family

ROUND_MODES = ("log", "linear")
UNDERFLOW_MODES = ("saturate", "flush")
N_RANGE = (2, 16)
F32_MIN_EXP, F32_MAX_EXP = -126, 127  # float32 normal range of 2^(t - sf) (LP-FORMAT §1)


@functools.lru_cache(maxsize=None)
def lp_fields(n: int, es: int, rs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(k, e, f, F) of every positive code p = 1 .. 2^(n-1)-1 (LP-FORMAT §3 steps 3-5)."""
    body = n - 1
    count = (1 << body) - 1
    k = np.empty(count, np.int64)
    e = np.empty(count, np.int64)
    f = np.empty(count, np.int64)
    F = np.empty(count, np.int64)
    for i, p in enumerate(range(1, count + 1)):
        pos = body - 1
        r0 = (p >> pos) & 1
        m = 0
        while m < rs and pos >= 0 and ((p >> pos) & 1) == r0:
            m += 1
            pos -= 1
        if m < rs:  # terminator (the opposite bit) is consumed
            pos -= 1
        remaining = pos + 1
        ebits = min(es, remaining)
        remaining -= ebits
        k[i] = m - 1 if r0 else -m
        e[i] = ((p >> remaining) & ((1 << ebits) - 1)) << (es - ebits)
        F[i] = remaining
        f[i] = p & ((1 << remaining) - 1)
    for arr in (k, e, f, F):
        arr.setflags(write=False)
    return k, e, f, F


@functools.lru_cache(maxsize=None)
def lp_log_values(n: int, es: int, rs: int) -> tuple[Fraction, ...]:
    """Exact log values t of positive codes 1 .. 2^(n-1)-1, strictly increasing (§4.2)."""
    k, e, f, F = lp_fields(n, es, rs)
    scale = 1 << es
    return tuple(
        Fraction(int(kk) * scale + int(ee)) + Fraction(int(ff), 1 << int(FF))
        for kk, ee, ff, FF in zip(k, e, f, F)
    )


def lp_range(n: int, es: int, rs: int) -> Fraction:
    """T: the log2 range +/-T of LP<n,es,rs,0> (LP-FORMAT §4.4)."""
    R = n - 1 - rs
    if R >= es:
        e_max = (1 << es) - 1
        u_max = 1 - Fraction(1, 1 << (R - es))
    else:
        e_max = ((1 << R) - 1) << (es - R)
        u_max = Fraction(0)
    return (1 << es) * (rs - 1) + e_max + u_max


class LPFormat(Format):
    """LP<n, es, rs, sf> with optional round=linear and underflow=flush (LP-FORMAT §5.4)."""

    family = "lp"
    sf_is_external = False  # sf is applied exactly in the log domain

    def __init__(self, n: int, es: int, rs: int, sf: float = 0.0, round: str = "log", underflow: str = "saturate"):
        if not (N_RANGE[0] <= n <= N_RANGE[1]):
            raise ValueError(f"n={n} is invalid: need {N_RANGE[0]} <= n <= {N_RANGE[1]}")
        if es < 0:
            raise ValueError(f"es={es} is invalid: need es >= 0")
        if not (1 <= rs <= n - 1):
            raise ValueError(f"rs={rs} is invalid for n={n}: need 1 <= rs <= {n - 1}")
        if round not in ROUND_MODES:
            raise ValueError(f"round={round!r} is invalid: need one of {', '.join(ROUND_MODES)}")
        if underflow not in UNDERFLOW_MODES:
            raise ValueError(f"underflow={underflow!r} is invalid: need one of {', '.join(UNDERFLOW_MODES)}")
        sf = float(sf)
        if not np.isfinite(sf):
            raise ValueError(f"sf={sf} is invalid: need a finite real")
        self.n, self.es, self.rs, self.sf = n, es, rs, sf + 0.0
        self.round, self.underflow = round, underflow
        self.bits = n
        T = lp_range(n, es, rs)
        self.T = T
        sf_q = Fraction(self.sf)
        low, high = -T - sf_q, T - sf_q
        if low < F32_MIN_EXP or high > F32_MAX_EXP:
            bound = f"-T - sf = {float(low)} < {F32_MIN_EXP}" if low < F32_MIN_EXP else f"T - sf = {float(high)} > {F32_MAX_EXP}"
            raise ValueError(
                f"{self.spec} is outside the float32 emulation range (n={n}, es={es}, rs={rs}, sf={format_real(sf)}): "
                f"{bound}; need -T - sf >= {F32_MIN_EXP} and T - sf <= {F32_MAX_EXP} with T = {float(T)}"
            )

    @property
    def spec(self) -> str:
        opts = ""
        if self.round != "log":
            opts += f",round={self.round}"
        if self.underflow != "saturate":
            opts += f",underflow={self.underflow}"
        return f"lp<{self.n},{self.es},{self.rs},{format_real(self.sf)}{opts}>"

    @property
    def nan_code(self) -> int:
        return 1 << (self.n - 1)  # NaR

    def log_values(self) -> tuple[Fraction, ...]:
        """Exact t of positive codes 1 .. N (without sf)."""
        return lp_log_values(self.n, self.es, self.rs)

    def fraction_bits(self) -> np.ndarray:
        """F of every positive code 1 .. N."""
        return lp_fields(self.n, self.es, self.rs)[3]

    def _build_grid(self) -> Grid:
        t = self.log_values()
        sf = Fraction(self.sf)
        mags = [Pow2(ti - sf) for ti in t]
        codes = np.arange(1, len(t) + 1, dtype=np.int64)
        if self.round == "log":
            points = [Pow2((t[i] + t[i + 1]) / 2 - sf) for i in range(len(t) - 1)]
        else:
            points = [Mean2(mags[i], mags[i + 1]) for i in range(len(t) - 1)]
        if self.underflow == "flush":
            mags = [Fraction(0)] + mags
            codes = np.concatenate([[0], codes])
            points = [Pow2(-self.T - sf - 1)] + points  # minpos / 2
        neg = (1 << self.n) - codes
        neg[codes == 0] = 0
        return Grid(tuple(mags), codes, neg, tuple(points), even_tie_up(codes))

    def _decode_exact(self):
        t = self.log_values()
        sf = Fraction(self.sf)
        N = len(t)
        out: list = [Fraction(0)] + [Pow2(ti - sf) for ti in t] + [None]
        out += [Neg(Pow2(t[(1 << self.n) - c - 1] - sf)) for c in range((1 << (self.n - 1)) + 1, 1 << self.n)]
        assert len(out) == 2 * N + 2
        return out


@register_family("lp")
def _build_lp(p: ParsedSpec) -> LPFormat:
    p.expect_args("n", "es", "rs", "sf")
    if p.sf_text is not None:
        raise ValueError(f"{p.text!r}: lp takes no '@' scale suffix; its sf is the fourth parameter")
    if "*" in p.args:
        raise ValueError(
            f"{p.text!r} has '*' parameters, which are calibrated per tensor by the quantizer; "
            "parse() needs a concrete format such as lp<8,1,3,0>"
        )
    options = dict(p.options)
    for key in options:
        if key not in ("round", "underflow"):
            raise ValueError(f"option {key!r} is unknown for lp in {p.text!r}; allowed: round, underflow")
    return LPFormat(
        p.int_arg(0, "n"), p.int_arg(1, "es"), p.int_arg(2, "rs"), parse_real(p.args[3], "sf", p.text),
        round=options.get("round", "log"), underflow=options.get("underflow", "saturate"),
    )
