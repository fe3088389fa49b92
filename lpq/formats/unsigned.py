"""Unsigned variants of the signed families: `ulp`, `ufp`, `uposit`, `uaf`, `ulns` (this project's extension).

A tensor that is never negative (a ReLU / ReLU6 output) wastes the sign bit of a signed format: at 4 bits that
halves its positive levels. The unsigned variant of an n-bit format spends all n bits on the magnitude. Every one
here is defined the same way: **the non-negative half of the (n+1)-bit signed format of the same family** — its
n-bit code is the (n+1)-bit code with its (zero) sign bit removed, its values, decision points, rounding (ties to
the even code), zero and saturation rules are those of the (n+1)-bit format, and a negative input gives +0.

- `ulp<n,es,rs,sf>` (options `round=`, `underflow=` as for lp): the non-negative half of `lp<n+1,es,rs,sf>` —
  all n bits encode regime (run capped at rs, 1 <= rs <= n), exponent and log fraction; code 0 is zero, tiny
  positive inputs go to minpos (never to zero, unless `underflow=flush`), large ones saturate at maxpos. Not in
  the paper (LP-FORMAT has signed LP only).
- `ufp<e,m>` (n = e + m bits, no specials): the non-negative half of `fp<e,m>`; the unsigned variant of
  `fp<e,m>` / the OCP presets at the same width is `ufp<e,m+1>` (`unsigned_variant`).
- `uposit<n,es>`, `uaf<n,e>`, `ulns<n,f>`: the non-negative halves of `posit<n+1,es>`, `af<n+1,e>`,
  `lns<n+1,f>`.
`uint<n>`, `uflint<n>`, `upot<n>` and `uant<n>` are defined in their own modules (BASELINE-FORMATS §2.1, §2.6);
`uint<n>` equals the non-negative half of `int<n+1>` too.
"""
from __future__ import annotations

import re

from .base import Format, Grid, Neg
from .spec import ParsedSpec, format_real, register_family, split_spec

# signed family -> its unsigned spec name (uint and the ANT types have their own classes)
UNSIGNED_NAMES = {"lp": "ulp", "fp": "ufp", "posit": "uposit", "af": "uaf", "lns": "ulns", "int": "uint",
                  "flint": "uflint", "pot": "upot", "ant": "uant"}
UNSIGNED_FAMILIES = frozenset(UNSIGNED_NAMES.values())
_OCP = {"fp8_e4m3": (4, 3), "fp8_e5m2": (5, 2), "fp6_e2m3": (2, 3), "fp6_e3m2": (3, 2), "fp4_e2m1": (2, 1)}


class UnsignedFormat(Format):
    """The non-negative half of a signed (n+1)-bit format `base`, as an n-bit format."""

    signed = False
    zero_keeps_sign = False

    def __init__(self, name: str, body: str, base: Format):
        self.family = name
        self.base = base
        self.bits = base.bits - 1
        self.sf = base.sf
        self.sf_is_external = base.sf_is_external
        self._body = body
        top = 1 << self.bits
        g = base.grid
        if g.neg_codes is None or any(int(c) >= top for c in g.pos_codes):
            raise AssertionError(f"{base.spec} is not a signed format with a sign bit on top")

    @property
    def spec(self) -> str:
        if self.sf_is_external and self.sf != 0:
            return f"{self._body}@{format_real(self.sf)}"
        return self._body

    @property
    def _zero_code(self) -> int:
        return self.base._zero_code

    def _build_grid(self) -> Grid:
        g = self.base.grid
        return Grid(g.magnitudes, g.pos_codes, None, g.points, g.tie_up)

    def _decode_exact(self) -> list:
        out = self.base._decode_exact()[: 1 << self.bits]
        if any(isinstance(v, Neg) for v in out):  # None: a pattern the format never produces (af), decodes to NaN
            raise AssertionError(f"{self.base.spec}: a code below 2^{self.bits} is negative")
        return out


def _signed_spec(p: ParsedSpec, name: str, args: str) -> str:
    opts = "".join(f",{k}={v}" for k, v in p.options)
    sf = "" if p.sf_text is None else f"@{p.sf_text}"
    return f"{name}<{args}{opts}>{sf}"


@register_family("ulp")
def _build_ulp(p: ParsedSpec) -> UnsignedFormat:
    from .spec import parse

    p.expect_args("n", "es", "rs", "sf")
    if "*" in p.args:
        raise ValueError(f"{p.text!r} has '*' parameters, which are calibrated per tensor by the quantizer; "
                         "parse() needs a concrete format such as ulp<4,1,3,0>")
    n, rs = p.int_arg(0, "n"), p.int_arg(2, "rs")
    if not 1 <= n <= 15:
        raise ValueError(f"n={n} is invalid for ulp<n,es,rs,sf>: need 1 <= n <= 15 (it is the non-negative half of "
                         f"lp<n+1,...>)")
    if not 1 <= rs <= n:
        raise ValueError(f"rs={rs} is invalid for ulp<{n},...>: need 1 <= rs <= {n}")
    if p.sf_text is not None:
        raise ValueError(f"{p.text!r}: ulp takes no '@' scale suffix; its sf is the fourth parameter")
    base = parse(_signed_spec(p, "lp", f"{n + 1},{p.args[1]},{rs},{p.args[3]}"))
    body = base.spec.replace(f"lp<{n + 1},", f"ulp<{n},", 1)
    return UnsignedFormat("ulp", body, base)


def _unsigned_of(p: ParsedSpec, name: str, signed_name: str, params: tuple[str, ...], bump_first: bool):
    from .spec import parse

    p.expect_args(*params)
    p.expect_no_options()
    values = [p.int_arg(i, params[i]) for i in range(len(params))]
    signed = list(values)
    if bump_first:
        signed[0] += 1
    body = f"{name}<{','.join(str(v) for v in values)}>"
    try:
        base = parse(f"{signed_name}<{','.join(str(v) for v in signed)}>" + ("" if p.sf_text is None else f"@{p.sf_text}"))
    except ValueError as err:
        raise ValueError(f"{p.text!r} is invalid: it is the non-negative half of "
                         f"{signed_name}<{','.join(str(v) for v in signed)}>, which is invalid: {err}") from None
    return UnsignedFormat(name, body, base)


@register_family("ufp")
def _build_ufp(p: ParsedSpec) -> UnsignedFormat:
    return _unsigned_of(p, "ufp", "fp", ("e", "m"), bump_first=False)  # fp<e,m> has 1 + e + m bits


@register_family("uposit")
def _build_uposit(p: ParsedSpec) -> UnsignedFormat:
    return _unsigned_of(p, "uposit", "posit", ("n", "es"), bump_first=True)


@register_family("uaf")
def _build_uaf(p: ParsedSpec) -> UnsignedFormat:
    return _unsigned_of(p, "uaf", "af", ("n", "e"), bump_first=True)


@register_family("ulns")
def _build_ulns(p: ParsedSpec) -> UnsignedFormat:
    return _unsigned_of(p, "ulns", "lns", ("n", "f"), bump_first=True)


def unsigned_variant(spec: str) -> str:
    """The unsigned variant at the same width of a format spec or template (`*` kept): lp -> ulp, int -> uint,
    fp<e,m> and the OCP presets -> ufp<e,m+1>, posit -> uposit, af -> uaf, lns -> ulns, flint/pot/ant ->
    uflint/upot/uant. An unsigned spec or `none` comes back unchanged."""
    text = spec.strip()
    if text.lower() in ("none", "fp32", ""):
        return text
    base, at, sf = text.partition("@")
    key = base.strip().lower()
    if key in _OCP:
        e, m = _OCP[key]
        return f"ufp<{e},{m + 1}>" + (at + sf if at else "")
    p = split_spec(text)
    if p.name in UNSIGNED_FAMILIES:
        return text
    if p.name not in UNSIGNED_NAMES:
        raise ValueError(f"{spec!r}: family {p.name!r} has no unsigned variant (known: {', '.join(UNSIGNED_NAMES)})")
    if p.name == "fp":
        p.expect_args("e", "m")
        args = f"{p.args[0]},{int(p.args[1]) + 1}"
    else:
        args = ",".join(p.args)
    opts = "".join(f",{k}={v}" for k, v in p.options)
    return f"{UNSIGNED_NAMES[p.name]}<{args}{opts}>" + ("" if p.sf_text is None else f"@{p.sf_text}")


def is_unsigned(spec: str) -> bool:
    """True for a spec (or template) of an unsigned format."""
    text = spec.strip()
    if not text or text.lower() in ("none", "fp32") or re.match(r"^fp\d_e\dm\d", text.lower()):
        return False
    return split_spec(text).name in UNSIGNED_FAMILIES
