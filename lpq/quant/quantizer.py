"""Quantizer strings -> callables on tensors.

A quantizer string is a format spec (`lp<4,1,3,0.5>`, `int<4>@3.25`) or a per-channel form
`<format>@ch` / `<format>@ch±Δ` whose per-output-channel sf vector travels beside it
(`w_sf` in qconfig.json; BASELINE-FORMATS §3). Per-channel sf is applied as the grid scale
2^-(sf_c + Δ) along dim 0: exact for power-of-two scales, otherwise within one float32
rounding of an in-format sf (BASELINE-FORMATS §1.2).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from ..formats import Format, format_real, parse

_CH_RE = re.compile(r"^(?P<base>.*)@ch(?P<delta>[+-][0-9.eE+-]+)?$")


@dataclass(frozen=True, eq=False)
class Quantizer:
    """A resolved tensor quantizer."""

    spec: str
    fmt: Format
    channel_sf: np.ndarray | None = None  # per-channel sf along dim 0, Δ included

    def _key(self):
        return (self.spec, None if self.channel_sf is None else tuple(float(v) for v in self.channel_sf))

    def __eq__(self, other) -> bool:
        return isinstance(other, Quantizer) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def bits(self) -> int:
        return self.fmt.bits

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_sf is None:
            return self.fmt.quantize(x)
        if x.shape[0] != len(self.channel_sf):
            raise ValueError(f"{self.spec}: tensor has {x.shape[0]} channels, the sf vector {len(self.channel_sf)}")
        scale = np.exp2(-self.channel_sf).reshape((-1,) + (1,) * (x.dim() - 1))
        return self.fmt.quantize(x, scale=scale)


def split_channel_spec(spec: str) -> tuple[str, float] | None:
    """(base format spec, Δ) for a per-channel quantizer string, else None."""
    m = _CH_RE.match(spec.strip())
    if not m:
        return None
    return m.group("base"), float(m.group("delta") or 0.0)


def channel_spec(base: str, delta: float = 0.0) -> str:
    """Canonical per-channel quantizer string."""
    if delta == 0:
        return f"{base}@ch"
    text = format_real(delta)
    return f"{base}@ch{text if text.startswith('-') else '+' + text}"


def make_quantizer(spec: str, channel_sf: list[float] | np.ndarray | None = None) -> Quantizer:
    """Build a Quantizer from a resolved quantizer string (no '*')."""
    ch = split_channel_spec(spec)
    if ch is None:
        if channel_sf is not None:
            raise ValueError(f"quantizer {spec!r} is per tensor but a per-channel sf vector was given")
        fmt = parse(spec)
        return Quantizer(fmt.spec, fmt)
    base, delta = ch
    if channel_sf is None:
        raise ValueError(f"per-channel quantizer {spec!r} needs its sf vector (w_sf)")
    fmt = parse(base)
    sf = np.asarray(channel_sf, dtype=np.float64) + delta
    if not np.all(np.isfinite(sf)) or np.any(np.abs(sf) > 126):
        raise ValueError(f"per-channel sf of {spec!r} must be finite with |sf| <= 126")
    return Quantizer(channel_spec(fmt.spec, delta), fmt, sf)
