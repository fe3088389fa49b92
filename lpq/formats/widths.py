"""The same format family at another bit width (quant.pin_first_last keeps the first and last layers at 8 bits)."""
from __future__ import annotations

from .spec import split_spec

_OCP = {"fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1"}


def at_width(spec: str, n: int) -> str:
    """`spec` (or template, `*` kept) with its width set to n in the same family: lp<4,*,*,*> -> lp<8,*,*,*>,
    int<4> -> int<8>, an OCP float or fp<e,m> -> fp8_e4m3 at 8 bits (fp<e,n-1-e> otherwise), ufp<e,m> ->
    ufp<e,n-e>, posit/af/lns/ANT types -> the same parameters at n. The scale suffix is dropped (a new width is
    calibrated anew); `none` stays `none`."""
    text = spec.strip()
    if text.lower() in ("none", "fp32", ""):
        return text
    base = text.partition("@")[0].strip().lower()
    if base in _OCP:
        return "fp8_e4m3" if n == 8 else f"fp<{min(4, n - 2)},{n - 1 - min(4, n - 2)}>"
    p = split_spec(base)
    args = list(p.args)
    opts = "".join(f",{k}={v}" for k, v in p.options)
    if p.name == "fp":
        e = int(args[0])
        return "fp8_e4m3" if n == 8 and e == 4 else f"fp<{min(e, n - 2)},{n - 1 - min(e, n - 2)}>"
    if p.name == "ufp":
        e = int(args[0])
        return f"ufp<{min(e, n - 1)},{n - min(e, n - 1)}>"
    if not args:
        raise ValueError(f"{spec!r} has no width parameter to set")
    args[0] = str(n)
    return f"{p.name}<{','.join(args)}{opts}>"
