"""ANT's eight benchmark networks with the artifact's own per-layer precisions (HWMODEL §9 V4, V8).

`conf/hw/ant_networks.yaml` transcribes the ANT (MICRO'22) simulator artifact's layer lists
(`ant_simulator/bitfusion/src/benchmarks/<design>_bench.py`): shapes, and for ANT, BitFusion,
AdaFloat and OLAccel one precision per layer (activations and weights alike). Running those lists
instead of timm extraction plus the §7.1 rules is what makes the eight-network comparison the
artifact's own (the rules are pinned only for ResNet-18).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Design, conf_dir
from .precision import Precision, native
from .workload import ConvGeom, GemmRecord

DESIGNS = ("ant", "bitfusion", "adafloat", "olaccel")


@dataclass(frozen=True)
class AntNetwork:
    """One network: batch-1 records and, per design, the bits of each record (None = not in its list)."""

    name: str
    label: str
    records: tuple[GemmRecord, ...]
    bits: dict[str, tuple[int | None, ...]]

    def workload(self, design: Design, key: str | None = None) -> tuple[list[GemmRecord], list[Precision]]:
        """Records and precisions the artifact runs on `design` (its list, `key` defaults to the name
        with any `_ws` suffix removed)."""
        bits = self.bits[key or design.name.removesuffix("_ws")]
        pairs = [(r, b) for r, b in zip(self.records, bits) if b is not None]
        return [r for r, _ in pairs], [native(design, b) for _, b in pairs]


def _pad(value) -> int | str:
    return value if isinstance(value, int) else str(value)


def _record(name: str, row: list) -> GemmRecord:
    """A batch-1 record from `[conv, IC, OC, KH, KW, H, OH, stride, pad]` or `[fc, M, IN, OUT]`."""
    if row[0] == "conv":
        ic, oc, kh, _kw, h, oh, stride, pad = row[1:]
        # quirk A3: the artifact reads K = KH from the weight shape and simulates a KH×KH kernel
        # (Simulator.get_cycles), so a 1×7 conv runs as 1×1 and a 7×1 conv as 7×7
        geo = ConvGeom(h, h, ic, kh, kh, stride, _pad(pad), oh, oh, 1)
        return GemmRecord(name, "conv", oh * oh, oc, kh * kh * ic, 1, "M", h * h * ic, geo)
    if row[0] == "fc":
        m, n_in, n_out = row[1:]
        return GemmRecord(name, "linear", m, n_out, n_in)
    raise ValueError(f"layer {name}: row {row!r} is neither [conv, …] nor [fc, …]")


def _bits(text: str, n: int, where: str) -> tuple[int | None, ...]:
    if len(text) != n:
        raise ValueError(f"{where}: {len(text)} precisions for {n} layers")
    return tuple(None if ch == "-" else int(ch) for ch in text)


def load_ant_networks(path: str | Path | None = None) -> dict[str, AntNetwork]:
    """The networks of conf/hw/ant_networks.yaml, in the artifact's order."""
    import yaml

    path = Path(path or conf_dir() / "hw" / "ant_networks.yaml")
    data = yaml.safe_load(path.read_text())
    out = {}
    for name, net in data["networks"].items():
        records = tuple(_record(f"{name}.{i}", row) for i, row in enumerate(net["layers"]))
        bits = {d: _bits(str(net["precision"][d]), len(records), f"{path.name} {name}.{d}") for d in DESIGNS}
        out[name] = AntNetwork(name, str(net.get("label", name)), records, bits)
    return out


def published(path: str | Path | None = None) -> dict:
    """The artifact's published per-network ratios vs AdaFloat (`published` block of the file)."""
    import yaml

    path = Path(path or conf_dir() / "hw" / "ant_networks.yaml")
    return yaml.safe_load(path.read_text())["published"]
