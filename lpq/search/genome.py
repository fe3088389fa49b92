"""Genes of every searchable family and their operators (LPQ §2, §3, §5.2).

A genome is a tuple with one gene per searched side (unit, 'w' | 'a'); a gene is a small
tuple whose first element is the bit width n. Each family knows how to print its quantizer
string, initialise, mutate and repair its genes. Randomness comes only from the GA stream.
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..formats import parse
from ..formats.calibrate import calibrate_sf, default_rule, quantization_mse, calibration_sample
from ..formats.grid_mse import sort_magnitudes
from ..formats.lp import F32_MAX_EXP, F32_MIN_EXP, lp_range
from ..formats.spec import format_real
from ..formats.unsigned import unsigned_variant
from ..quant.calibrate import calibrate_lp, median_sf

FAMILIES = ("lp", "int", "fp", "posit", "af", "ant")
SF_WINDOW = 8.0
SF_LIMIT = 126.0
ANT_TYPES = ("int", "flint", "pot")


@dataclass(frozen=True)
class Side:
    """One searched tensor: a layer's weight or one of its activation operands."""

    unit: str
    side: str  # "w" | "a"
    is_weight: bool  # counts towards the weight budget (conv/linear weights)
    numel: int  # P_l for weights, activation elements per sample otherwise
    pinned: bool
    segment: int  # prefix-reuse segment of the unit
    unsigned: bool = False  # an activation never negative on the calibration set (quant.unsigned_acts=auto)


Gene = tuple
Anchor = Optional[Callable[[Gene], Optional[float]]]  # calibrated sf of a gene's structure (one unit)


class Family:
    """Gene logic of one format family (subclasses below)."""

    name = ""
    sf_sigma = 0.125
    anchor_max = True  # sf follows max(Q0) when n changes (scaled families)

    def __init__(self, bits: tuple[int, ...], sf_step: float, es_max: int = 3):
        self.bits = tuple(sorted(b for b in bits if b >= self.min_bits))
        if not self.bits:
            raise ValueError(f"search.bits={list(bits)} has no width usable by search.format={self.name}")
        self.sf_step = sf_step
        self.es_max = es_max

    min_bits = 2
    unsigned = False

    def unsigned_view(self) -> "Family":
        """The same family emitting the unsigned variant of each gene's format at the same width (an activation side
        that is never negative, quant.unsigned_acts=auto): same genes and operators, unsigned spec strings, and
        calibration on the unsigned code book."""
        view = copy.copy(self)
        view.__class__ = _unsigned_class(type(self))
        return view

    def grid_n(self, n: int) -> int:
        """Width of the signed code book whose non-negative half a gene of width n uses (n; n + 1 when unsigned)."""
        return n + 1 if self.unsigned else n

    # ---- strings --------------------------------------------------------------------------
    def spec(self, g: Gene) -> str:
        raise NotImplementedError

    def base(self, g: Gene) -> str:
        """Spec of the unscaled format (structure only)."""
        return self.spec(g).partition("@")[0]

    # ---- structure ------------------------------------------------------------------------
    def structures(self, n: int) -> list[tuple]:
        """All structural gene values (between n and sf) allowed at width n."""
        return [()]

    def default_structure(self, n: int) -> tuple:
        return self.structures(n)[0]

    def clamp_structure(self, n: int, s: tuple) -> tuple:
        allowed = self.structures(n)
        return s if s in allowed else min(allowed, key=lambda a: sum(abs(x - y) for x, y in zip(a, s) if isinstance(x, int)))

    def make(self, n: int, s: tuple, sf: float) -> Gene:
        return (n,) + tuple(s) + (sf,)

    def structure_of(self, g: Gene) -> tuple:
        return tuple(g[1:-1])

    # ---- sf --------------------------------------------------------------------------------
    def snap(self, sf: float) -> float:
        return float(np.round(sf / self.sf_step) * self.sf_step) if self.sf_step else float(sf)

    def limits(self, g: Gene) -> tuple[float, float]:
        """Range of sf the format allows at g's structure (|sf| <= 126)."""
        return -SF_LIMIT, SF_LIMIT

    def sf_bounds(self, g: Gene, sf0: float, channel_sf: np.ndarray | None = None) -> tuple[float, float]:
        """Window sf0 ± 8 within the format's limits. Per channel (the gene is a shift Δ of the
        calibrated vector `channel_sf`): every channel's sf + Δ must stay within the limits."""
        lo, hi = self.limits(g)
        if channel_sf is not None and len(channel_sf):
            lo, hi = lo - float(np.min(channel_sf)), hi - float(np.max(channel_sf))
        return max(sf0 - SF_WINDOW, lo), min(sf0 + SF_WINDOW, hi)

    def clamp_sf(self, g: Gene, sf: float, sf0: float, channel_sf: np.ndarray | None = None) -> float:
        lo, hi = self.sf_bounds(g, sf0, channel_sf)
        sf = self.snap(min(max(sf, lo), hi))
        if sf < lo:
            sf += self.sf_step or 0.0
        if sf > hi:
            sf -= self.sf_step or 0.0
        return sf + 0.0

    @functools.lru_cache(maxsize=None)
    def max_q0(self, base: str) -> float:
        return parse(base).max

    # ---- operators ------------------------------------------------------------------------
    def repair(self, g: Gene, sf0: float, pinned: bool, anchor: Anchor = None, channels: "ChannelScales | None" = None) -> Gene:
        """LPQ §2.3 steps 1-3: snap n (pinned: 8), clamp structure, snap and clamp sf (per
        channel: the shift Δ, so that every channel's sf stays in range)."""
        g = self.with_n(g, 8 if pinned else self.nearest_bits(g[0]), anchor)
        vec = channels.vector(g) if channels is not None else None
        return g[:-1] + (self.clamp_sf(g, g[-1], sf0, vec),)

    def with_n(self, g: Gene, n: int, anchor: Anchor = None) -> Gene:
        return self.reshape(g, n, self.structure_of(g), anchor)

    def reshape(self, g: Gene, n: int, structure: tuple, anchor: Anchor = None) -> Gene:
        """The gene with width n and structure (clamped at n), sf re-anchored (project choice,
        README). With `anchor` (the unit's calibrated sf per structure, `ScaleAnchor`) sf keeps
        its offset from the calibrated scale: sf += anchor(new) - anchor(old), for every family.
        Without it, scaled families (int, fp, ant) shift sf by log2 of the max(Q0) ratio so the
        represented maximum stays put; lp, posit and af keep sf."""
        s = self.clamp_structure(n, tuple(structure))
        sf = g[-1]
        old = self.make(g[0], self.clamp_structure(g[0], self.structure_of(g)), 0.0)
        new = self.make(n, s, 0.0)
        if old != new:
            a_old = a_new = None
            if anchor is not None:
                a_old, a_new = anchor(old), anchor(new)
            if a_old is not None and a_new is not None:
                sf += a_new - a_old
            elif self.anchor_max:
                sf += math.log2(self.max_q0(self.base(new)) / self.max_q0(self.base(old)))
        return self.make(n, s, sf)

    def nearest_bits(self, n: int) -> int:
        return min(self.bits, key=lambda b: (abs(b - n), b))  # ties: down

    def mutate(self, g: Gene, rng: np.random.Generator, anchor: Anchor = None, retune: bool = False) -> Gene:
        """Each gene mutates with probability 1/2, at least one (LPQ §5.2); structural moves
        re-anchor sf (`reshape`). With `retune` an n move also takes the unit's least-MSE
        structure at the new width (`ScaleAnchor.best_structure`)."""
        k = len(g)
        chosen = rng.random(k) < 0.5
        if not chosen.any():
            chosen[rng.integers(k)] = True
        for i in np.nonzero(chosen)[0]:
            value = self.move(g, int(i), rng)
            if i == 0:
                best = getattr(anchor, "best_structure", None) if retune else None
                g = self.reshape(g, value, best(value), anchor) if best else self.with_n(g, value, anchor)
            elif i == k - 1:
                g = g[:-1] + (value,)
            else:
                structure = list(self.structure_of(g))
                structure[i - 1] = value
                g = self.reshape(g, g[0], tuple(structure), anchor)
        return g

    def move(self, g: Gene, i: int, rng: np.random.Generator):
        n = g[0]
        if i == 0:  # n: neighbouring allowed width, inwards at an end
            idx = self.bits.index(self.nearest_bits(n))
            step = 1 if rng.random() < 0.5 else -1
            if not 0 <= idx + step < len(self.bits):
                step = -step
            return self.bits[min(max(idx + step, 0), len(self.bits) - 1)]
        if i == len(g) - 1:  # sf
            return g[-1] + float(rng.normal(0.0, self.sigma(g)))
        value = g[i]  # integer structural gene: +-1, the other way if clamping undoes it
        step = 1 if rng.random() < 0.5 else -1
        for s in (step, -step):
            trial = list(g)
            trial[i] = value + s
            if self.clamp_structure(n, tuple(trial[1:-1]))[i - 1] != value:
                return value + s
        return value

    def sigma(self, g: Gene) -> float:
        return self.sf_sigma

    # ---- initialisation (LPQ §3) ------------------------------------------------------------
    def sf0(self, n: int, x: np.ndarray, seed: int) -> float:
        """Centre of the sf window: the family's default scale rule at its default structure."""
        fmt = parse(self.base(self.make(n, self.default_structure(n), 0.0)))
        return self.snap(calibrate_sf(fmt, x, default_rule(fmt), seed=seed))

    def init_med(self, n: int, x: np.ndarray, sf0: float, seed: int) -> Gene:
        return self.make(n, self.default_structure(n), sf0)

    init_rule = "mse"  # scale rule of the MSE seed and of the sf anchor

    def prepare(self, x: np.ndarray, seed: int):
        """The unit's data as `calibrated_sf` reads it (computed once per unit)."""
        return calibration_sample(x, seed)

    def calibrated_sf(self, g: Gene, prepared, seed: int) -> float:
        """sf of the structure of g by the family's `init_rule` (unsnapped)."""
        return calibrate_sf(parse(self.base(g)), prepared, self.init_rule, seed=seed)

    def init_mse(self, n: int, x: np.ndarray, sf0: float, seed: int) -> Gene:
        """Structure and sf of least quantization MSE (`init_rule` scale per structure)."""
        sample = calibration_sample(x, seed)
        best = None
        for s in self.structures(n):
            fmt = parse(self.base(self.make(n, s, 0.0)))
            sf = self.snap(calibrate_sf(fmt, sample, self.init_rule, seed=seed))
            mse = float(quantization_mse(fmt, sample, np.array([sf]))[0])
            if best is None or mse < best[0]:
                best = (mse, s, sf)
        return self.make(n, best[1], best[2])


class ScaleAnchor:
    """One unit's calibrated sf per structure (lazy, cached; deterministic): the reference that
    `Family.reshape` keeps sf's offset to when n or a structural gene changes."""

    def __init__(self, family: Family, x: np.ndarray, seed: int):
        self.family, self.x, self.seed = family, x, seed
        self._prepared = None
        self._cache: dict[str, float | None] = {}

    def __call__(self, g: Gene) -> float | None:
        key = self.family.base(g)
        if key not in self._cache:
            if self._prepared is None:
                self._prepared = self.family.prepare(self.x, self.seed)
            try:
                self._cache[key] = float(self.family.calibrated_sf(g, self._prepared, self.seed))
            except ValueError:  # no candidate in range (extreme tensors): fall back to the default shift
                self._cache[key] = None
        return self._cache[key]

    def best_structure(self, n: int) -> tuple:
        """The structural genes of least quantization MSE at width n (the I_mse rule)."""
        key = ("structure", n)
        if key not in self._cache:
            self._cache[key] = self.family.structure_of(self.family.init_mse(n, self.x, 0.0, self.seed))
        return self._cache[key]


class ChannelScales:
    """One weight unit's calibrated per-output-channel sf vector per structure, for searches
    with `quant.per_channel=true` (LPQ §2.2): the unit's sf gene is a shift Δ applied to the
    whole vector (string `<base>@ch±Δ`). The vector of a structure is the family's default
    scale rule per channel (LP: the I_mse rule of LPQ §3 at that es, rs; af: pow2max; ant:
    antclip), i.e. what `lpq evaluate quant.per_channel=true` calibrates; computed lazily and
    cached (deterministic). As an anchor (`Family.reshape`) it keeps Δ when n or the
    structure changes, because the vector itself is recalibrated for the new structure."""

    def __init__(self, family: Family, x: np.ndarray, seed: int):
        w = np.asarray(x, dtype=np.float32)
        if w.ndim < 2:
            raise ValueError(f"per-channel quantization needs a weight with an output-channel axis, got shape {w.shape}")
        self.family, self.seed = family, seed
        self.rows = [w[c].ravel() for c in range(w.shape[0])]
        self._sorted = None
        self._vectors: dict[str, np.ndarray] = {}
        self._structures: dict[int, tuple] = {}

    def __call__(self, g: Gene) -> float:
        return 0.0

    def _sorted_rows(self):
        if self._sorted is None:
            self._sorted = sort_magnitudes(self.rows)  # as `resolve(..., per_channel=True)` reads them
        return self._sorted

    def vector(self, g: Gene) -> np.ndarray:
        """Calibrated per-channel sf (Δ not included) of g's structure."""
        key = self.family.base(g)
        if key not in self._vectors:
            if self.family.name == "lp":
                n, es, rs = g[0], g[1], g[2]
                vec = calibrate_lp(self._sorted_rows(), n, es, rs, wide=True)[2]
            else:
                vec = [self.family.calibrated_sf(g, self.family.prepare(r, self.seed), self.seed) for r in self.rows]
            self._vectors[key] = np.asarray(vec, dtype=np.float64)
        return self._vectors[key]

    def total_mse(self, g: Gene) -> float:
        """Quantization MSE of the whole tensor with g's structure and its calibrated vector."""
        fmt = parse(self.family.base(g))
        vec = self.vector(g)
        err = sum(float(quantization_mse(fmt, r, np.array([sf]))[0]) * r.size for r, sf in zip(self.rows, vec))
        return err / max(1, sum(r.size for r in self.rows))

    def best_structure(self, n: int) -> tuple:
        """Structure of least whole-tensor MSE at width n (the per-channel I_mse rule; LP: the
        (es, rs) that `resolve('lp<n,*,*,*>', per_channel=True)` picks)."""
        if n not in self._structures:
            if self.family.name == "lp":
                es, rs, _ = calibrate_lp(self._sorted_rows(), n, wide=True)
                self._structures[n] = (es, rs) + ((0,) if getattr(self.family, "_uf_gene", False) else ())
            else:
                cands = self.family.structures(n)
                errs = [self.total_mse(self.family.make(n, s, 0.0)) for s in cands]
                self._structures[n] = cands[int(np.argmin(errs))]
        return self._structures[n]


class LPFamily(Family):
    """LP genes (n, es, rs, sf); with search.lp_underflow=search also the underflow rule: (n, es, rs, uf, sf),
    uf = 0 never underflows (LP-FORMAT's default, tiny values go to minpos), uf = 1 flushes below minpos/2 to 0."""

    name = "lp"
    anchor_max = False  # sf centres the tapered grid (median rule); it does not follow max(Q0)
    underflow = "saturate"  # saturate | flush (every gene) | search (a gene)

    @property
    def _uf_gene(self) -> bool:
        return self.underflow == "search"

    def structures(self, n):
        g = self.grid_n(n)  # an unsigned side (ulp<n> = half of lp<n+1>) has lp<n+1>'s es and rs range
        es_hi = min(self.es_max, max(0, g - 2))
        base = [(0, 1)] if g == 2 else [(es, rs) for es in range(es_hi + 1) for rs in range(1, g)]
        return [s + (uf,) for s in base for uf in (0, 1)] if self._uf_gene else base

    def default_structure(self, n):
        s = (1, min(3, n - 1)) if n > 2 else (0, 1)
        return s + (0,) if self._uf_gene else s

    def clamp_structure(self, n, s):
        tail = (min(max(int(s[2]), 0), 1),) if self._uf_gene else ()
        g = self.grid_n(n)
        if g == 2:
            return (0, 1) + tail
        es = min(max(s[0], 0), min(self.es_max, max(0, g - 2)))
        rs = min(max(s[1], 1), g - 1)
        return (es, rs) + tail

    def _option(self, g) -> str:
        flush = self.underflow == "flush" or (self._uf_gene and g[3] == 1)
        return ",underflow=flush" if flush else ""

    def spec(self, g):
        n, es, rs, sf = g[0], g[1], g[2], g[-1]
        return f"lp<{n},{es},{rs},{format_real(sf)}{self._option(g)}>"

    def base(self, g):
        n, es, rs = g[0], g[1], g[2]
        return f"lp<{n},{es},{rs},0{self._option(g)}>"

    def sigma(self, g):
        return 0.25 * 2 ** g[1]

    def limits(self, g):
        T = float(lp_range(self.grid_n(g[0]), g[1], g[2]))
        return max(-SF_LIMIT, T - F32_MAX_EXP), min(SF_LIMIT, -F32_MIN_EXP - T)  # float32 emulation range

    def sf0(self, n, x, seed):
        return float(median_sf(sort_magnitudes(np.asarray(x, np.float64).ravel()))[0])

    def init_mse(self, n, x, sf0, seed):
        rows = sort_magnitudes(np.asarray(x, np.float64).ravel())
        es, rs, sfs = calibrate_lp(rows, self.grid_n(n))
        if (es, rs) != self.clamp_structure(n, (es, rs, 0))[:2]:  # es above search.es_max: the nearest allowed gene
            es, rs = self.clamp_structure(n, (es, rs, 0))[:2]
            sfs = calibrate_lp(rows, self.grid_n(n), es, rs)[2]
        sf = self.snap(float(sfs[0]))
        if not self._uf_gene:
            return (n, es, rs, sf)
        sample = calibration_sample(x, seed)  # the underflow rule of least MSE at this structure and sf
        x32 = np.asarray(sample, np.float32)
        errs = [float(np.mean((parse(self.spec((n, es, rs, uf, sf))).quantize(x32).astype(np.float64) - x32) ** 2))
                for uf in (0, 1)]
        return (n, es, rs, int(np.argmin(errs)), sf)

    def prepare(self, x, seed):
        return sort_magnitudes(np.asarray(x, np.float64).ravel())

    def calibrated_sf(self, g, prepared, seed):
        n, es, rs = g[0], g[1], g[2]
        return float(calibrate_lp(prepared, self.grid_n(n), es, rs)[2][0])  # the I_mse rule at this structure


class IntFamily(Family):
    name = "int"

    def spec(self, g):
        return f"int<{g[0]}>@{format_real(g[-1])}"


class FPFamily(Family):
    name = "fp"

    def structures(self, n):
        return [(e,) for e in range(1, min(5, n - 1) + 1)] if n > 2 else [(1,)]

    def default_structure(self, n):
        return (max(1, min(math.ceil((n - 1) / 2), min(5, n - 1))),)

    def spec(self, g):
        n, e, sf = g
        return f"fp<{e},{n - 1 - e}>@{format_real(sf)}"


class PositFamily(Family):
    name = "posit"
    anchor_max = False

    def structures(self, n):
        return [(es,) for es in range(min(3, max(0, n - 2)) + 1)]

    def default_structure(self, n):
        return (min(1, max(0, n - 2)),)

    def spec(self, g):
        n, es, sf = g
        return f"posit<{n},{es}>@{format_real(sf)}"

    def sigma(self, g):
        return 0.25 * 2 ** g[1]


class AFFamily(Family):
    name = "af"
    min_bits = 3
    anchor_max = False  # pow2max: the top binade holds max|x| whatever n is
    init_rule = "pow2max"  # af's scale is an integer power of two (BASELINE-FORMATS §2.4)

    def __init__(self, bits, sf_step, es_max=3):
        super().__init__(bits, 1.0, es_max)  # integer sf

    def structures(self, n):
        return [(e,) for e in range(2, min(5, n - 1) + 1)]

    def default_structure(self, n):
        return (min(3, n - 1),)

    def spec(self, g):
        n, e, sf = g
        return f"af<{n},{e}>@{format_real(sf)}"

    def move(self, g, i, rng):
        if i == len(g) - 1:
            return g[-1] + (1.0 if rng.random() < 0.5 else -1.0)
        return super().move(g, i, rng)


class AntFamily(Family):
    name = "ant"
    min_bits = 2

    def structures(self, n):
        """int, flint, pot where the width allows them: the signed ranges, or the unsigned ones for an unsigned
        side (upot stops at n = 5, uflint starts at n = 2), so every gene is a valid spec."""
        from ..formats.ant import ant_kinds

        return [(ANT_TYPES.index(kind),) for kind in ant_kinds(n, self.unsigned)]

    def clamp_structure(self, n, s):
        allowed = self.structures(n)
        return s if s in allowed else allowed[0]

    def move(self, g, i, rng):
        if i == 1:  # type: uniformly to another allowed type
            others = [t for (t,) in self.structures(g[0]) if t != g[1]]
            return others[rng.integers(len(others))] if others else g[1]
        return super().move(g, i, rng)

    def spec(self, g):
        n, t, sf = g
        return f"{ANT_TYPES[t]}<{n}>@{format_real(sf)}"

    def init_med(self, n, x, sf0, seed):
        """ANT's type choice (choose_ant_type: antclip scale, least MSE, ties keep the earlier
        type) over the types allowed at n, so n = 2 (int, pot) works too."""
        from ..formats.calibrate import antclip_search

        sample = calibration_sample(x, seed)
        best = None
        for (t,) in self.structures(n):
            sf, mse = antclip_search(parse(self.base(self.make(n, (t,), 0.0))), sample, seed=seed)
            if best is None or mse < best[0]:
                best = (mse, t, sf)
        return (n, best[1], self.snap(float(best[2])))

    def sf0(self, n, x, seed):
        return self.init_med(n, x, 0.0, seed)[-1]

    def calibrated_sf(self, g, prepared, seed):
        from ..formats.calibrate import antclip_search

        return antclip_search(parse(self.base(g)), prepared, seed=seed)[0]

    def init_mse(self, n, x, sf0, seed):
        return self.init_med(n, x, sf0, seed)


FAMILY_CLASSES = {c.name: c for c in (LPFamily, IntFamily, FPFamily, PositFamily, AFFamily, AntFamily)}


LP_UNDERFLOW = ("saturate", "flush", "search")


def make_family(name: str, bits, sf_step: float, es_max: int = 3, lp_underflow: str = "saturate") -> Family:
    if name not in FAMILY_CLASSES:
        raise ValueError(f"search.format={name!r} is invalid: need one of {', '.join(FAMILIES)}")
    fam = FAMILY_CLASSES[name](tuple(int(b) for b in bits), float(sf_step), int(es_max))
    if lp_underflow not in LP_UNDERFLOW:
        raise ValueError(f"search.lp_underflow={lp_underflow!r} is invalid: need saturate (LP-FORMAT's default), "
                         f"flush (every LP gene) or search (a gene per layer)")
    if name == "lp":
        fam.underflow = lp_underflow
    return fam


@functools.lru_cache(maxsize=None)
def _unsigned_class(cls: type) -> type:
    """cls with unsigned spec strings: `lp<...>` -> `ulp<...>`, `int<n>` -> `uint<n>`, `fp<e,m>` -> `ufp<e,m+1>`, ..."""

    def spec(self, g):
        return unsigned_variant(cls.spec(self, g))

    def base(self, g):
        return unsigned_variant(cls.base(self, g))

    return type(f"Unsigned{cls.__name__}", (cls,), {"unsigned": True, "spec": spec, "base": base})
