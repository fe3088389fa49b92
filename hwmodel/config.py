"""Designs and profiles from the `hw` config group (HWMODEL §0, §7.1; PIPELINE §4.1).

`conf/hw/<design>.yaml` describes a design (PE type, formats, lanes, precision rule, array,
dataflow) and pulls in a profile (`conf/hw/profile/<profile>.yaml`: cycle/memory model, architecture
parameters and constant tables with sources). `HwConfig.from_dict` takes the composed `hw` node as
a plain dict; `compose_hw` composes it with Hydra for use outside the `lpq` command.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .constants import load_table, table_hash
from .lanes import check_lanes
from .systolic import check_dataflow

PE_KINDS = ("fused", "fixed")
LP_DECODE = ("edge", "pe", "none")
ACCOUNTING = ("physical", "scalesim")
STORAGE = ("lane", "exact")
PROFILE_MODELS = ("systolic", "ant_tiling", "bitfusion_tiling", "peak")
TILING_MODELS = ("ant_tiling", "bitfusion_tiling")  # profiles with a per-design array table
PROFILE_EXTRA = ("chart", "ablation", "poster")  # optional profile sections kept verbatim in Profile.extra


def _need(cfg: Mapping, key: str, where: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise ValueError(f"{where}: missing key {key!r}")
    return cfg[key]


def _choice(value, allowed: tuple[str, ...], param: str) -> str:
    text = str(value).lower()
    if text not in allowed:
        raise ValueError(f"{param}={value!r} is invalid: need one of {', '.join(allowed)}")
    return text


@dataclass(frozen=True)
class Design:
    """One accelerator design inside a profile (§7.1)."""

    name: str
    pe_kind: str
    pe_energy: str  # energy entry: per PE-cycle (fused) or per MAC (fixed)
    pe_area: str  # area entry of one PE
    families: tuple[str, ...]
    precision_source: str
    rule: Mapping[str, Any]
    lanes: tuple[int, ...]
    lp_decode: str
    array: tuple[int, int] | None  # published (iso-area) size, None = §6.2 rule
    dataflow: str
    sources: str = ""

    @classmethod
    def from_dict(cls, cfg: Mapping) -> "Design":
        where = f"hw={cfg.get('design', '?')}"
        pe = _need(cfg, "pe", where)
        array = cfg.get("array")
        if array is not None and (len(array) != 2 or any(int(v) < 1 for v in array)):
            raise ValueError(f"{where}: array={list(array)!r} is invalid: need [rows, cols] or null")
        return cls(
            name=str(_need(cfg, "design", "hw")),
            pe_kind=_choice(_need(pe, "kind", where + " pe"), PE_KINDS, "hw.pe.kind"),
            pe_energy=str(_need(pe, "energy", where + " pe")),
            pe_area=str(_need(pe, "area", where + " pe")),
            families=tuple(str(f) for f in _need(cfg, "family", where)),
            precision_source=_choice(cfg.get("precision_source", "rule"), ("rule", "qconfig"), "hw.precision_source"),
            rule=dict(_need(cfg, "rule", where)),
            lanes=check_lanes(_need(cfg, "lanes", where)),
            lp_decode=_choice(cfg.get("lp_decode", "none"), LP_DECODE, "hw.lp_decode"),
            array=tuple(int(v) for v in array) if array is not None else None,
            dataflow=check_dataflow(_need(cfg, "dataflow", where)),
            sources=str(cfg.get("sources", "")),
        )

    @property
    def native_family(self) -> str:
        return self.families[0]

    @property
    def max_bits(self) -> int:
        return self.lanes[-1]

    @property
    def is_lp(self) -> bool:
        return self.lp_decode != "none"


@dataclass(frozen=True)
class Profile:
    """Cycle/memory model, architecture parameters and loaded constant tables (§0)."""

    name: str
    model: str
    clock_hz: float
    arch: Mapping[str, Any]
    energy: Mapping[str, float]
    area: Mapping[str, float]
    iso_area: Mapping[str, Any]
    arrays: Mapping[str, tuple[int, int]]
    pe: Mapping[str, Mapping[str, Any]]
    validated: bool
    constants_hash: str
    extra: Mapping[str, Any] = field(default_factory=dict)  # profile-specific sections (dac24: chart, ablation, poster)

    @classmethod
    def from_dict(cls, cfg: Mapping) -> "Profile":
        where = f"hw.profile={cfg.get('name', '?')}"
        clock = float(_need(cfg, "clock_hz", where))
        node = cfg.get("node_nm")
        energy_raw, area_raw = dict(_need(cfg, "energy", where)), dict(_need(cfg, "area", where))
        return cls(
            name=str(_need(cfg, "name", "hw.profile")),
            model=_choice(_need(cfg, "model", where), PROFILE_MODELS, "hw.profile.model"),
            clock_hz=clock,
            arch=dict(_need(cfg, "arch", where)),
            energy=load_table(energy_raw, None if node is None else int(node), clock),
            area=load_table(area_raw, int(cfg.get("area_node_nm") or 28), clock),
            iso_area=dict(cfg.get("iso_area") or {}),
            arrays={str(k): (int(v[0]), int(v[1])) for k, v in (cfg.get("arrays") or {}).items()},
            pe={str(k): dict(v) for k, v in (cfg.get("pe") or {}).items()},
            validated=bool(cfg.get("validated", False)),
            constants_hash=table_hash(energy_raw, area_raw, dict(cfg.get("arch") or {})),
            extra={k: cfg[k] for k in PROFILE_EXTRA if cfg.get(k) is not None},
        )

    def e(self, key: str) -> float:
        """An energy entry (canonical units), with an error naming the missing key."""
        if key not in self.energy:
            raise ValueError(f"profile {self.name}: no energy entry {key!r}; known: {', '.join(sorted(self.energy))}")
        return self.energy[key]

    def a(self, key: str) -> float:
        """An area entry in µm²."""
        if key not in self.area:
            raise ValueError(f"profile {self.name}: no area entry {key!r}; known: {', '.join(sorted(self.area))}")
        return self.area[key]


@dataclass(frozen=True)
class HwConfig:
    """The composed `hw` node: design, profile and run settings (§1.4, §8)."""

    design: Design
    profile: Profile
    batch: int
    baseline: str
    normalise_also: tuple[str, ...]
    accounting: str
    allow_family_mismatch: bool
    storage: str
    rows: int | None
    cols: int | None
    input_size: tuple[int, ...] | None

    @classmethod
    def from_dict(cls, cfg: Mapping) -> "HwConfig":
        batch = int(cfg.get("batch", 1))
        if batch < 1:
            raise ValueError(f"hw.batch={batch} is invalid: need a positive integer")
        rows, cols = cfg.get("rows"), cfg.get("cols")
        if (rows is None) != (cols is None):
            raise ValueError(f"hw.rows={rows!r}, hw.cols={cols!r}: set both or neither")
        for key, value in (("hw.rows", rows), ("hw.cols", cols)):
            if value is not None and int(value) < 1:
                raise ValueError(f"{key}={value!r} is invalid: need a positive integer")
        size = cfg.get("input_size")
        return cls(
            design=Design.from_dict(cfg),
            profile=Profile.from_dict(_need(cfg, "profile", "hw")),
            batch=batch,
            baseline=str(cfg.get("baseline", "ant")),
            normalise_also=tuple(str(b) for b in cfg.get("normalise_also") or ()),
            accounting=_choice(cfg.get("accounting", "physical"), ACCOUNTING, "hw.accounting"),
            allow_family_mismatch=bool(cfg.get("allow_family_mismatch", False)),
            storage=_choice(cfg.get("storage", "lane"), STORAGE, "hw.storage"),
            rows=None if rows is None else int(rows),
            cols=None if cols is None else int(cols),
            input_size=tuple(int(v) for v in size) if size else None,
        )


def conf_dir() -> Path:
    """The repository's conf/ directory (next to the hwmodel package)."""
    path = Path(__file__).resolve().parents[1] / "conf"
    if not (path / "hw").is_dir():
        raise ValueError(f"cannot find conf/hw next to the hwmodel package (looked in {path})")
    return path


def compose_hw(design: str, profile: str | None = None, overrides: tuple[str, ...] | list[str] = (),
               config_dir: str | Path | None = None) -> dict:
    """The `hw` node for `hw=<design>` (and `hw/profile=<profile>`) as a plain dict, via Hydra
    (memoised per argument set: composing costs ~0.1 s)."""
    ovs = [f"+hw={design}"] + ([f"hw/profile={profile}"] if profile else [])
    ovs += [o if o.startswith("hw") else f"hw.{o}" for o in overrides]
    return copy.deepcopy(_compose_hw_group(tuple(ovs), str(Path(config_dir or conf_dir()).resolve())))


@functools.lru_cache(maxsize=64)
def _compose_hw_group(overrides: tuple[str, ...], config_dir: str) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = compose(config_name=None, overrides=list(overrides))  # the hw group alone
    return OmegaConf.to_container(cfg.hw, resolve=True)


def load_hw(design: str, profile: str | None = None, overrides: tuple[str, ...] | list[str] = (),
            config_dir: str | Path | None = None) -> HwConfig:
    """`HwConfig` of a design (and profile) from conf/hw, for tests, benchmarks and scripts."""
    return HwConfig.from_dict(compose_hw(design, profile, overrides, config_dir))
