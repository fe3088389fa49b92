"""Scale calibration rules and the ANT type choice (BASELINE-FORMATS §1.3, §2.6, §4.2, §5.6).

- absmax maps max|x| to max(Q0) (up to the one float32 rounding of §1.2); all-zero data -> 0;
  sf is clamped to |sf| <= 126.
- median: sf = -median(log2|x|) over nonzero x; pow2max: sf = -floor(log2 max|x|).
- mse: the result is one of the candidates sf_init + j/16 (j in [-8, 48] after absmax, [-32, 32]
  after median) and never worse than the initial candidate, nor than any other candidate.
- antclip: sf = log2(max(Q0) / (alpha * max|x|)) with alpha on the 0.01 grid, chosen by MSE.
- ant<n>: the type choice rows of §4.2 (int / pot / flint, each with MSE 0), ties keep the
  earlier type, n >= 7 uses int only.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from lpq.formats import calibrate_sf, default_rule, parse
from lpq.formats.ant import choose_ant_type

F32 = np.float32


def sf_text(sf: float) -> str:
    text = repr(float(sf))
    return text[:-2] if text.endswith(".0") else text


@functools.lru_cache(maxsize=4096)
def quantizer(spec: str, sf: float):
    return parse(f"{spec}@{sf_text(sf)}")


@functools.lru_cache(maxsize=None)
def base(spec: str):
    return parse(spec)


def quantize_sf(spec: str, sf: float, x: np.ndarray) -> np.ndarray:
    """s * Q0(x / s) evaluated as §1.2 prescribes (checked against `@sf` quantizers in
    test_baselines_properties.py): out = RN32(Q0(RN32(x * r)) * s)."""
    r, s = F32(2.0**sf), F32(2.0**-sf)
    return base(spec).quantize((x * r).astype(F32)) * s


def mse(spec: str, sf: float, x: np.ndarray) -> float:
    q = quantize_sf(spec, sf, x)
    return float(np.mean((q.astype(np.float64) - x.astype(np.float64)) ** 2))


def sample(kind: str, size: int = 2001, seed: int = 0, scale: float = 1.0, spec: str = "") -> np.ndarray:
    """Seeded test data; non-negative for unsigned formats (post-ReLU use, §2.1)."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        x = rng.standard_normal(size)
    elif kind == "laplace":
        x = rng.laplace(size=size)
    else:  # heavy tail: a few outliers
        x = rng.standard_normal(size)
        x[:5] *= 40
    if spec.startswith("u"):
        x = np.abs(x)
    return (x * scale).astype(F32)


# (spec, max(Q0) from the §1.3 table, default rule)
TABLE = [
    ("int<4>", 7, "mse"),
    ("int<8>", 127, "mse"),
    ("uint<4>", 15, "mse"),
    ("fp8_e4m3", 448, "mse"),
    ("fp8_e5m2", 57344, "mse"),
    ("fp6_e2m3", 7.5, "mse"),
    ("fp6_e3m2", 28, "mse"),
    ("fp4_e2m1", 6, "mse"),
    ("fp<3,4>", 31, "mse"),
    ("posit<8,0>", 2.0**6, "mse"),
    ("posit<8,1>", 2.0**12, "mse"),
    ("posit<6,2>", 2.0**16, "mse"),
    ("af<6,3>", 1.75, "pow2max"),
    ("af<8,4>", 1.875, "pow2max"),
    ("lns<8,3>", 2.0 ** (63 / 8), "mse"),
    ("lns<6,1>", 2.0 ** (15 / 2), "mse"),
    ("flint<4>", 16, "antclip"),
    ("flint<5>", 64, "antclip"),
    ("pot<4>", 64, "antclip"),
    ("pot<3>", 4, "antclip"),
]
MEDIAN_INIT = ("posit",)
ABSMAX_MSE = [s for s, _, r in TABLE if r == "mse" and not s.startswith(MEDIAN_INIT)]
MEDIAN_MSE = [s for s, _, r in TABLE if r == "mse" and s.startswith(MEDIAN_INIT)]


@pytest.mark.parametrize("spec,maxq,rule", TABLE)
def test_default_rule_and_max_q0(spec, maxq, rule):
    f = parse(spec)
    assert default_rule(f) == rule
    assert F32(f.max) == F32(maxq)


@pytest.mark.parametrize("spec", ["ant<4>", "ant<8>"])
def test_default_rule_ant(spec):
    assert default_rule(parse(spec)) == "antclip"


# ---------------------------------------------------------------------------------------------
# absmax, median, pow2max
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,maxq,rule", TABLE)
@pytest.mark.parametrize("kind,scale", [("normal", 1.0), ("heavy", 3e-3), ("laplace", 250.0)])
def test_absmax_maps_max_to_max_code(spec, maxq, rule, kind, scale):
    x = sample(kind, scale=scale, spec=spec)
    sf = calibrate_sf(parse(spec), x, "absmax")
    amax = float(np.max(np.abs(x)))
    assert abs(sf - math.log2(maxq / amax)) < 1e-9
    i = int(np.argmax(np.abs(x)))
    top = quantizer(spec, sf).quantize(x[i:i + 1])[0]
    want = F32(maxq) * F32(2.0**-sf)  # RN32(max(Q0) * s)
    assert top == np.copysign(want, x[i]), f"{spec}@{sf}: max|x| -> {top}, want +-{want}"


def test_absmax_zero_tensor():
    assert calibrate_sf(parse("int<8>"), np.zeros(16, F32), "absmax") == 0


@pytest.mark.parametrize("spec,amax,want", [("int<8>", 1e-38, 126.0), ("int<2>", 3.0e38, -126.0),
                                            ("fp8_e4m3", 1e-37, 126.0)])
def test_absmax_clamps_to_126(spec, amax, want):
    x = np.array([amax, -amax / 2, 0], F32)
    assert calibrate_sf(parse(spec), x, "absmax") == want


@pytest.mark.parametrize("spec", ["posit<8,0>", "posit<8,2>", "posit<16,1>"])
@pytest.mark.parametrize("kind,scale", [("normal", 1.0), ("laplace", 1e-3), ("heavy", 77.0)])
def test_median_rule(spec, kind, scale):
    x = sample(kind, size=2001, scale=scale)
    x = np.concatenate([x, np.zeros(7, F32)])  # zeros are ignored
    nz = np.abs(x[x != 0]).astype(np.float64)
    assert nz.size % 2 == 1
    want = -float(np.median(np.log2(nz)))
    assert abs(calibrate_sf(parse(spec), x, "median") - want) < 1e-9


@pytest.mark.parametrize("spec", ["af<6,3>", "af<8,4>", "af<4,2>"])
@pytest.mark.parametrize("amax,want", [(460, -8), (1.9, 0), (300, -8), (2.0, -1), (0.5, 1), (0.75, 1),
                                       (1.0, 0), (1e-3, 10)])
def test_pow2max_rule(spec, amax, want):
    x = np.array([amax * 0.3, -amax, amax / 7], F32)
    sf = calibrate_sf(parse(spec), x, "pow2max")
    assert sf == want and float(sf).is_integer()


# ---------------------------------------------------------------------------------------------
# mse
# ---------------------------------------------------------------------------------------------
def check_mse(spec: str, x: np.ndarray, init: float, lo: int, hi: int) -> None:
    f = parse(spec)
    sf = calibrate_sf(f, x, "mse")
    assert calibrate_sf(f, x, "mse") == sf  # deterministic
    j = (sf - init) * 16
    assert abs(j - round(j)) < 1e-6 and lo <= round(j) <= hi, f"{spec}: sf={sf} is not init {init} + j/16"
    got = mse(spec, sf, x)
    first = mse(spec, init, x)
    best = min(mse(spec, init + k / 16, x) for k in range(lo, hi + 1))
    assert got <= first * (1 + 1e-6), f"{spec}: mse {got} worse than the initial candidate {first}"
    assert got <= best * (1 + 1e-6), f"{spec}: mse {got} at sf={sf}, a candidate reaches {best}"


@pytest.mark.parametrize("spec", ABSMAX_MSE)
@pytest.mark.parametrize("kind", ["normal", "heavy"])
def test_mse_rule_absmax_init(spec, kind):
    x = sample(kind, size=3001, seed=3, scale=0.05, spec=spec)
    maxq = float(parse(spec).max)
    check_mse(spec, x, math.log2(maxq / float(np.max(np.abs(x)))), -8, 48)


@pytest.mark.parametrize("spec", MEDIAN_MSE)
@pytest.mark.parametrize("kind", ["normal", "laplace"])
def test_mse_rule_median_init(spec, kind):
    x = sample(kind, size=3001, seed=4, scale=20.0)
    check_mse(spec, x, -float(np.median(np.log2(np.abs(x.astype(np.float64))))), -32, 32)


def test_mse_zero_tensor_keeps_initial():
    """All candidates tie at MSE 0: the smallest |j| (j = 0) wins."""
    assert calibrate_sf(parse("int<8>"), np.zeros(32, F32), "mse") == 0


# ---------------------------------------------------------------------------------------------
# antclip
# ---------------------------------------------------------------------------------------------
def alpha_grid(n: int) -> list[float]:
    return [k / 100 for k in (range(95, 150) if n >= 7 else range(75, 150))]


@pytest.mark.parametrize("spec", ["int<4>", "int<8>", "flint<4>", "flint<5>", "flint<8>", "pot<4>", "pot<5>"])
@pytest.mark.parametrize("kind", ["normal", "heavy", "laplace"])
def test_antclip_rule(spec, kind):
    n = int(spec.split("<")[1].rstrip(">"))
    x = sample(kind, size=1501, seed=5, scale=0.2)
    f = parse(spec)
    maxq, amax = float(f.max), float(np.max(np.abs(x)))
    sf = calibrate_sf(f, x, "antclip")
    alpha = maxq / (2.0**sf * amax)
    grid = alpha_grid(n)
    k = min(range(len(grid)), key=lambda i: abs(grid[i] - alpha))
    assert abs(grid[k] - alpha) < 1e-9, f"{spec}: sf={sf} gives alpha={alpha}, not on the grid {grid[0]}..{grid[-1]}"
    errs = [mse(spec, math.log2(maxq / (a * amax)), x) for a in grid]
    got = mse(spec, sf, x)
    assert got <= min(errs) * (1 + 1e-6)
    assert got <= errs[grid.index(1.0)] * (1 + 1e-6)


# ---------------------------------------------------------------------------------------------
# ant<n> type choice (§2.6, §4.2)
# ---------------------------------------------------------------------------------------------
C0 = 0.25


def signed(mags) -> np.ndarray:
    m = np.array(sorted(set(mags)), np.float64) * C0
    return np.concatenate([m, -m[m > 0]]).astype(F32)


ANT_ROWS = [
    # data, n, chosen type, sf (alpha = 1.00 gives MSE 0)
    (signed(range(8)), 4, "int<4>", 2.0),  # +-{0..7} c: max(Q0) 7 at 7c
    (signed([2.0**k for k in range(7)]), 4, "pot<4>", 2.0),  # +-{2^0..2^6} c: max(Q0) 64 at 64c
    (signed([1, 2, 3, 4, 6, 8, 16]), 4, "flint<4>", 2.0),  # max(Q0) 16 at 16c
    (signed([1, 2, 4]), 4, "flint<4>", 4.0),  # flint and pot both reach MSE 0: the earlier type wins
]


@pytest.mark.parametrize("x,n,kind,sf", ANT_ROWS)
def test_ant_type_choice(x, n, kind, sf):
    choice = choose_ant_type(x, n)
    assert isinstance(choice, str) and "@" in choice
    q = parse(choice)
    assert q.spec.split("@")[0] == kind, f"ant<{n}> chose {choice}, want {kind}"
    assert abs(q.sf - sf) < 1e-9
    out = q.quantize(x)
    assert np.array_equal(out, x), f"{choice}: MSE must be 0, got {out} for {x}"


@pytest.mark.parametrize("n", [7, 8])
def test_ant_high_bit_widths_use_int_only(n):
    x = signed([2.0**k for k in range(7)])
    choice = choose_ant_type(x, n)
    assert parse(choice).spec.startswith(f"int<{n}>")


def test_ant_choice_matches_antclip_of_each_type():
    """The chosen type has the smallest antclip MSE of int, flint, pot (ties: earlier)."""
    x = sample("laplace", size=1001, seed=9, scale=0.3)
    errs = []
    for kind in ("int<5>", "flint<5>", "pot<5>"):
        errs.append((mse(kind, calibrate_sf(parse(kind), x, "antclip"), x), kind))
    choice = parse(choose_ant_type(x, 5))
    best = min(e for e, _ in errs)
    first_best = next(k for e, k in errs if e <= best * (1 + 1e-9))
    assert choice.spec.split("@")[0] == first_best
    assert abs(choice.sf - calibrate_sf(parse(first_best), x, "antclip")) < 1e-12
