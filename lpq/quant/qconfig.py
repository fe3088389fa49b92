"""qconfig.json: which quantizer each layer got (LPQ §11), versioned.

    {"schema_version": 1,
     "layers": {"layer1.0.conv1": {"w": "lp<4,1,3,0.5>", "a": "lp<6,0,5,-1.25>"},
                "fc": {"w": "int<8>@ch", "w_sf": [3.1, 2.9, ...], "a": "int<8>@4.5"}}}

Keys are module names (or `<attn>.qk` / `<attn>.av`) in execution order; strings are resolved
quantizer strings (no `*`); "w"/"a" may be null (that side in FP32); layers left in FP32 are
absent. Extra top-level keys (e.g. "source") are kept for provenance and ignored.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..pipeline import atomic
from .quantizer import Quantizer, make_quantizer

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerQ:
    w: str | None
    a: str | None
    w_sf: tuple[float, ...] | None = None

    def to_json(self) -> dict:
        out: dict = {"w": self.w, "a": self.a}
        if self.w_sf is not None:
            out["w_sf"] = list(self.w_sf)
        return out


@dataclass
class QConfig:
    layers: dict[str, LayerQ]
    extra: dict | None = None

    def to_json(self) -> dict:
        out = dict(self.extra or {})
        out["schema_version"] = SCHEMA_VERSION
        out["layers"] = {name: lq.to_json() for name, lq in self.layers.items()}
        return out

    def save(self, path: str | Path) -> None:
        """Canonical JSON (sorted keys, trailing newline) except that layers keep execution order."""
        obj = self.to_json()
        out = {k: obj[k] for k in sorted(obj)}
        out["layers"] = {name: {k: v for k, v in sorted(e.items())} for name, e in obj["layers"].items()}
        atomic.write_text(path, json.dumps(out, indent=2, allow_nan=True) + "\n")

    def quantizers(self) -> dict[str, tuple[Quantizer | None, Quantizer | None]]:
        """Build the (weight, activation) quantizers; errors name the layer."""
        out = {}
        for name, lq in self.layers.items():
            try:
                wq = make_quantizer(lq.w, lq.w_sf) if lq.w else None
                aq = make_quantizer(lq.a) if lq.a else None
            except ValueError as err:
                raise ValueError(f"qconfig layer {name!r}: {err}") from None
            out[name] = (wq, aq)
        return out

    @classmethod
    def from_json(cls, obj: dict, source: str = "qconfig") -> "QConfig":
        if not isinstance(obj, dict) or "layers" not in obj:
            raise ValueError(f"{source}: not a qconfig (no 'layers' key)")
        version = obj.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"{source}: schema_version={version!r} is not supported (need {SCHEMA_VERSION})")
        layers = {}
        for name, entry in obj["layers"].items():
            if not isinstance(entry, dict) or not set(entry) <= {"w", "a", "w_sf"}:
                raise ValueError(f"{source}: layer {name!r} must be an object with keys w, a (and w_sf)")
            for side in ("w", "a"):
                if entry.get(side) is not None and ("*" in str(entry[side])):
                    raise ValueError(f"{source}: layer {name!r} side {side} is not resolved: {entry[side]!r}")
            sf = entry.get("w_sf")
            layers[name] = LayerQ(entry.get("w"), entry.get("a"), tuple(float(v) for v in sf) if sf is not None else None)
        extra = {k: v for k, v in obj.items() if k not in ("layers", "schema_version")}
        qc = cls(layers, extra or None)
        qc.quantizers()  # validate every string now, with the layer in the message
        return qc

    @classmethod
    def load(cls, path: str | Path) -> "QConfig":
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"quant.config={path} does not exist")
        try:
            obj = json.loads(p.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"quant.config={path} is not valid JSON: {err}") from None
        return cls.from_json(obj, source=f"quant.config={path}")
