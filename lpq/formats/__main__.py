"""Print a table of formats: python -m lpq.formats SPEC [SPEC ...]

For each spec string: canonical form, bits, number of finite values, smallest positive and
largest value, dynamic range in binades, and the quantization of a few probe values.
"""
from __future__ import annotations

import math
import sys

import numpy as np

from . import parse

PROBES = np.array([0.1, -0.3, 1.7, 3.0, 300.0], dtype=np.float32)


def format_table(specs: list[str]) -> str:
    header = f"{'spec':28s} {'bits':>4s} {'values':>6s} {'min_positive':>12s} {'max':>12s} {'binades':>7s}  quantize({', '.join(f'{p:g}' for p in PROBES)})"
    lines = [header, "-" * len(header)]
    for spec in specs:
        fmt = parse(spec)
        q = fmt.quantize(PROBES)
        lines.append(
            f"{fmt.spec:28s} {fmt.bits:4d} {len(fmt.codebook()):6d} {fmt.min_positive:12.5g} {fmt.max:12.5g} "
            f"{math.log2(fmt.max / fmt.min_positive):7.2f}  {', '.join(f'{v:.5g}' for v in q)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    try:
        print(format_table(args))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
