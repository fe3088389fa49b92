"""Per-record operand precisions (HWMODEL §1.4, §7.1 precision rules).

`hwmodel` takes (family, bits) per operand, not spec strings; `lpq hwsim` derives them from a
qconfig.json or uniform formats with `lpq.formats`. Records absent from a qconfig run at the
design's maximum native width and are flagged `unquantized`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .config import Design
from .workload import GemmRecord


@dataclass(frozen=True)
class Operand:
    """One GEMM operand: format family, bit width n and (LP) decoded width w_dec (§3.3)."""

    family: str
    bits: int
    dec_bits: int | None = None

    def __post_init__(self):
        if not isinstance(self.bits, int) or self.bits < 1:
            raise ValueError(f"bits={self.bits!r} of a {self.family} operand is invalid: need a positive integer")


@dataclass(frozen=True)
class Precision:
    """Ifmap (a) and filter (w) operands of one record."""

    a: Operand
    w: Operand
    unquantized: bool = False


def lp_decoded_width(n: int, es: int, rs: int) -> int:
    """w_dec = 2 + ⌈log2(T + 1)⌉ + 1 + F_max for LP⟨n, es, rs, ·⟩ (§3.3; T, F_max: LP-FORMAT §4.4)."""
    R = n - 1 - rs
    if R >= es:
        e_max, u_max = 2 ** es - 1, (1 - 2.0 ** -(R - es)) if R > es else 0.0
    else:
        e_max, u_max = (2 ** R - 1) * 2 ** (es - R), 0.0
    T = 2 ** es * (rs - 1) + e_max + u_max
    f_max = max(0, n - 1 - min(rs, 2) - es)
    return 2 + math.ceil(math.log2(T + 1)) + 1 + f_max


def default_decoded_width(bits: int) -> int:
    """w_dec when es and rs are unknown (uniform `lp<n,*,*,*>` or rule precisions): n + 2 [assumption;
    equals LP⟨8,1,3,·⟩'s 10 bits]."""
    return bits + 2


def native(design: Design, bits: int, unquantized: bool = False) -> Precision:
    """Both operands at `bits` in the design's native family."""
    op = Operand(design.native_family, int(bits))
    return Precision(op, op, unquantized)


def rule_precisions(design: Design, records: list[GemmRecord], model_name: str = "") -> list[Precision]:
    """Precisions of the design's fixed rule (§7.1): `default` bits, `first_last` for the first and
    last GEMM, and per-model overrides `models: {<model>: {<record name>: bits}}`."""
    rule = design.rule
    default = int(rule.get("default", design.max_bits))
    first_last = rule.get("first_last")
    overrides = dict((rule.get("models") or {}).get(model_name, {}) or {})
    out = []
    for i, rec in enumerate(records):
        bits = default
        if first_last is not None and i in (0, len(records) - 1):
            bits = int(first_last)
        bits = int(overrides.get(rec.name, bits))
        out.append(native(design, bits))
    return out


def check_families(design: Design, records: list[GemmRecord], precisions: list[Precision], allow: bool) -> None:
    """A family the design cannot execute is an error unless allow_family_mismatch (§1.4)."""
    if allow:
        return
    for rec, p in zip(records, precisions):
        for side, op in (("a", p.a), ("w", p.w)):
            if not p.unquantized and op.family not in design.families:
                raise ValueError(
                    f"layer {rec.name!r} side {side} uses family {op.family!r}, which hw={design.name} cannot execute "
                    f"(allowed: {', '.join(design.families)}); set hw.allow_family_mismatch=true for what-if studies")
