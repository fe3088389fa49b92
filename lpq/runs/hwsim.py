"""`lpq hwsim`: hardware simulation of a model on one accelerator design (HWMODEL §1.4, §8).

    lpq hwsim model=... [quant.config=FILE | quant.w_format=... quant.a_format=...] hw=<design>
              [hw/profile=default28|ant_compat|bitfusion45] [hw.rows=R hw.cols=C] [hw.dataflow=os|ws|is] out_dir=DIR

The workload is traced from the model architecture alone (no weights are loaded or needed:
`model.checkpoint` is ignored, timm models are built with random init on the `meta` device), or
read from `io.gemms=gemms.csv`. Writes out_dir/layers.csv, summary.json and comparison.png.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from hwmodel.config import HwConfig, compose_hw
from hwmodel.extract import Workload, extract_workload
from hwmodel.precision import Operand, Precision, check_families, lp_decoded_width, native, rule_precisions
from hwmodel.report import comparison_figure, layers_csv, save_figure
from hwmodel.simulate import normalise, simulate
from hwmodel.workload import GemmRecord, read_gemms_csv

from ..pipeline import atomic
from .steps import is_none

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger("lpq")


# ---- model architecture and input size (no weights) ---------------------------------------------

def build_architecture(model_cfg: DictConfig) -> tuple["nn.Module", str, tuple[int, ...] | None]:
    """(module, name, input_size) of the `model` config group without loading weights."""
    import torch

    kind = model_cfg.get("kind")
    if kind == "embedded":
        from ..data.embedded import INPUT_SHAPE
        from ..models.embedded import EMBEDDED_MODELS

        name = model_cfg.get("name")
        if name not in EMBEDDED_MODELS:
            raise ValueError(f"model.name={name!r} is not an embedded model: need one of {', '.join(EMBEDDED_MODELS)}")
        with torch.device("meta"):
            return EMBEDDED_MODELS[name](), name, tuple(INPUT_SHAPE)
    if kind == "timm":
        import timm

        name = model_cfg.get("name")
        if not name or name == "???":
            raise ValueError("model.name is not set: give a timm model name, e.g. model=timm model.name=resnet18")
        kwargs = {"num_classes": int(model_cfg.num_classes)} if model_cfg.get("num_classes") is not None else {}
        try:
            with torch.device("meta"):
                module = timm.create_model(name, pretrained=False, **kwargs)
        except RuntimeError as err:
            raise ValueError(f"model.name={name!r} is not a timm model ({err})") from None
        size = tuple(getattr(module, "pretrained_cfg", {}).get("input_size", ())) or None
        return module, name, size
    if kind == "cifar_resnet":
        from ..models.cifar_resnet import INPUT_SIZE, cifar_resnet

        depth = model_cfg.get("depth")
        if depth in (None, "???"):
            raise ValueError("model.depth is not set: model=cifar_resnet needs model.depth (20, 32, 44, 56 or 110)")
        with torch.device("meta"):
            module = cifar_resnet(int(depth))
        return module, str(model_cfg.get("name") or f"cifar_resnet{depth}"), INPUT_SIZE
    if kind == "python":
        from ..models import build_model

        loaded = build_model(model_cfg)  # a user entry builds its own module (weights included)
        return loaded.module, loaded.name, loaded.input_size
    raise ValueError(f"model.kind={kind!r} is invalid: need embedded, timm, cifar_resnet or python")


def load_workload(cfg: DictConfig) -> tuple[Workload, str]:
    """The batch-1 workload: `io.gemms` (a gemms.csv) or traced from the architecture (§1.3)."""
    gemms = (cfg.get("io") or {}).get("gemms")
    if gemms:
        path = Path(str(gemms))
        if not path.is_file():
            raise ValueError(f"io.gemms={gemms} does not exist")
        return Workload(read_gemms_csv(path), {}, "file"), str(cfg.model.get("name") or path.stem)
    module, name, size = build_architecture(cfg.model)
    override = cfg.hw.get("input_size") or cfg.model.get("input_size")
    if override:
        size = tuple(int(v) for v in override)
    if not size:
        raise ValueError(f"the input size of model {name!r} is unknown: set hw.input_size=[C,H,W]")
    return extract_workload(module, size, batch=1), str(name)


# ---- precisions (§1.4) ----------------------------------------------------------------------------

def spec_operand(spec: str) -> Operand:
    """(family, bits, LP decoded width) of a quantizer string; `*` parameters need no calibration here."""
    from ..formats import parse
    from ..formats.spec import split_spec
    from ..quant.quantizer import split_channel_spec

    text = str(spec).strip()
    ch = split_channel_spec(text)
    if ch is not None:
        text = ch[0]
    if "*" in text:
        parsed = split_spec(text)
        family = SIGNED_FAMILY.get(parsed.name, parsed.name)
        if not parsed.args or "*" in parsed.args[0]:
            raise ValueError(f"format {spec!r}: the bit width (first parameter) cannot be '*'")
        return Operand(family, parsed.int_arg(0, "n"))
    fmt = parse(text)
    if fmt.family in SIGNED_FAMILY:  # unsigned variant (quant.unsigned_acts): an n-bit lane of its signed family
        base = fmt.base  # the (n+1)-bit signed format whose non-negative half it is
        dec = lp_decoded_width(base.n, base.es, base.rs) if base.family == "lp" else None
        return Operand(base.family, int(fmt.bits), dec)
    dec = lp_decoded_width(fmt.n, fmt.es, fmt.rs) if fmt.family == "lp" else None
    return Operand(fmt.family, int(fmt.bits), dec)


# unsigned variants (lpq/formats/unsigned.py) run on their signed family's datapath, all n bits as magnitude: an
# n-bit lane (assumption: the PE's sign handling is bypassed by a mode bit; an ulp<n> operand is decoded as the
# magnitude of lp<n+1>, so its decoded width is lp<n+1>'s). uint and the unsigned ANT types are families of their own.
SIGNED_FAMILY = {"ulp": "lp", "ufp": "fp", "uposit": "posit", "uaf": "af", "ulns": "lns"}


def _base_name(name: str) -> str:
    return name.split("#", 1)[0]


def bind_precisions(cfg: DictConfig, hw: HwConfig, records: list[GemmRecord], model_name: str
                    ) -> tuple[list[Precision], str]:
    """Per-record precisions and their source: qconfig, uniform formats, or the design's rule."""
    q = cfg.quant
    design = hw.design
    unq = native(design, design.max_bits, unquantized=True)
    if q.get("config"):
        from ..quant.qconfig import QConfig

        qc = QConfig.load(q.config)
        names = {_base_name(r.name) for r in records}
        unknown = sorted(set(qc.layers) - names)
        if unknown:
            raise ValueError(f"quant.config={q.config} names layers the workload does not have: {unknown[:5]}; "
                             f"workload layers: {sorted(names)[:5]}...")
        out = []
        for r in records:
            lq = qc.layers.get(_base_name(r.name))
            if lq is None or lq.a is None or lq.w is None:
                a = spec_operand(lq.a) if lq is not None and lq.a else unq.a
                w = spec_operand(lq.w) if lq is not None and lq.w else unq.w
                out.append(Precision(a, w, unquantized=True))
            else:
                out.append(Precision(spec_operand(lq.a), spec_operand(lq.w)))
        return out, "qconfig"
    if not (is_none(q.w_format) and is_none(q.a_format)):
        w = unq.w if is_none(q.w_format) else spec_operand(q.w_format)
        a = unq.a if is_none(q.a_format) else spec_operand(q.a_format)
        skip = set(q.get("skip") or ())
        out = []
        for r in records:
            attn_off = r.op in ("attn_qk", "attn_av") and not bool(q.get("attention_matmuls", True))
            if _base_name(r.name) in skip or attn_off:
                out.append(unq)
            else:
                out.append(Precision(a, w, unquantized=is_none(q.w_format) or is_none(q.a_format)))
        return out, "uniform"
    return rule_precisions(design, records, model_name), "rule"


# ---- the command -----------------------------------------------------------------------------------

# run settings a baseline shares with the design (the profile itself and the batch are passed explicitly)
_SHARED_PREFIXES = ("hw.profile.", "hw.accounting", "hw.storage", "hw.input_size")


def baseline_config(name: str, cfg: DictConfig, overrides: list[str]) -> HwConfig:
    """The baseline design in the same profile, with the run's profile/batch/accounting overrides."""
    from ..config import conf_dir

    shared = [o for o in overrides if o.lstrip("+~").startswith(_SHARED_PREFIXES)]
    raw = compose_hw(name, str(cfg.hw.profile.name), [f"hw.batch={int(cfg.hw.batch)}", *shared], conf_dir())
    return HwConfig.from_dict(raw)


def run_hwsim(cfg: DictConfig, out_dir: Path, overrides: list[str] | None = None) -> dict:
    """Trace, bind precisions, simulate the design and its baselines, write the three outputs (§8)."""
    start = time.perf_counter()
    hw = HwConfig.from_dict(OmegaConf.to_container(cfg.hw, resolve=True))
    workload, model_name = load_workload(cfg)
    records = workload.records
    precisions, source = bind_precisions(cfg, hw, records, model_name)
    check_families(hw.design, records, precisions, hw.allow_family_mismatch)
    result = simulate(records, precisions, hw, model_name)
    summary = result.summary
    summary["meta"]["precision_source"] = source
    summary["meta"]["qconfig"] = str(cfg.quant.config) if cfg.quant.get("config") else None
    summary["excluded_ops"] = {k: {"calls": v[0], "elements": v[1]} for k, v in workload.excluded.items()}
    norm = {}
    for base in dict.fromkeys((hw.baseline, *hw.normalise_also)):
        if base == hw.design.name:
            norm[base] = normalise(summary, summary)
            continue
        bhw = baseline_config(base, cfg, list(overrides or []))
        bprec = rule_precisions(bhw.design, records, model_name)
        norm[base] = normalise(summary, simulate(records, bprec, bhw, model_name).summary)
    summary["norm"] = norm
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out_dir / "layers.csv", layers_csv(result.layers))
    atomic.write_json(out_dir / "summary.json", summary)
    fig = comparison_figure(summary)
    atomic.write_with(out_dir / "comparison.png", lambda tmp: save_figure(fig, tmp))
    log.info("%s on %s (%s, %dx%d, batch %d): %d cycles, %.4g ms, %.4g uJ; %s; %.1f s",
             hw.design.name, model_name, hw.profile.name, *summary["meta"]["array"], hw.batch,
             summary["cycles"]["total"], summary["latency_ms"], summary["energy_pj"]["total"] / 1e6,
             ", ".join(f"vs {b}: {v['speedup']:.2f}x speed, {v['energy_eff']:.2f}x energy eff." for b, v in norm.items()),
             time.perf_counter() - start)
    return summary
