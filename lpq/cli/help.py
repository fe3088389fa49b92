"""`lpq <command> --help`: usage, what the command reads and writes, and every config group and key it uses
with its default and one-line description, generated from `conf/` (values from Hydra's composed config, the
description from the key's inline `# comment` in its YAML file), so the help cannot drift from the config."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class CommandHelp:
    summary: str
    reads: str
    writes: str
    groups: tuple[str, ...]  # config groups the command reads
    top_keys: tuple[str, ...]  # root keys of conf/config.yaml it reads
    examples: tuple[str, ...]


COMMANDS_HELP: dict[str, CommandHelp] = {
    "train": CommandHelp(
        "train an embedded model (digits_cnn, digits_vit) on the embedded digits, offline",
        "the embedded digits dataset (shipped inside scikit-learn)",
        "out_dir/model.pt, out_dir/train.json",
        ("model",), ("seed", "out_dir"),
        ("lpq train model=digits_cnn out_dir=runs/cnn", "lpq train model=digits_vit seed=1 out_dir=runs/vit")),
    "evaluate": CommandHelp(
        "fake-quantize a model (a qconfig.json, or uniform formats calibrated here) and measure top-1/top-5",
        "the model's weights (model.checkpoint), validation and calibration images (data), quant.config",
        "out_dir/metrics.json, out_dir/qconfig.json (what was applied), out_dir/predictions.csv (input of lpq compare)",
        ("model", "data", "calib", "quant", "eval"), ("device", "out_dir"),
        ("lpq evaluate model=cifar_resnet32 model.checkpoint=resnet32-d509ac18.th data=cifar10 "
         "data.root=cifar10_jpeg out_dir=runs/r32-fp32",
         "lpq evaluate model=digits_cnn model.checkpoint=runs/cnn/model.pt quant.w_format='lp<8,*,*,*>' "
         "quant.a_format='lp<8,*,*,*>' out_dir=runs/cnn-lp8",
         "lpq evaluate model=digits_cnn model.checkpoint=runs/cnn/model.pt quant.config=runs/cnn-lpq/qconfig.json "
         "out_dir=runs/cnn-lpq-eval",
         "lpq evaluate model=digits_cnn model.checkpoint=runs/cnn/model.pt quant.config=runs/cnn-lpq/qconfig.json "
         "quant.reconstruct=brecq quant.rounding=runs/cnn-lpq-brecq/rounding.pt out_dir=runs/cnn-lpq-brecq-eval")),
    "calibrate": CommandHelp(
        "draw the calibration set and collect the FP model's activation statistics once per model",
        "the model's weights, the calibration pool (data)",
        "out_dir/calib.pt (read by lpq search calib.cache=...), out_dir/calib.json",
        ("model", "data", "calib", "quant"), ("device", "out_dir"),
        ("lpq calibrate model=digits_cnn model.checkpoint=runs/cnn/model.pt out_dir=runs/cnn-calib",)),
    "search": CommandHelp(
        "LPQ: genetic search of one format per layer under an average-bit budget (search=none: uniform PTQ)",
        "the model's weights, the calibration pool (data; never the validation images), calib.cache",
        "out_dir/qconfig.json, out_dir/search.json, out_dir/search_log.csv (and out_dir/.ckpt/ to resume)",
        ("model", "data", "calib", "quant", "search", "budget"), ("seed", "device", "out_dir"),
        ("lpq search model=digits_cnn model.checkpoint=runs/cnn/model.pt search.format=lp budget.w_bits=4 "
         "budget.a_bits=4 out_dir=runs/cnn-lpq",
         "lpq search model=cifar_resnet32 model.checkpoint=resnet32-d509ac18.th data=cifar10 data.root=cifar10_jpeg "
         "search.format=int budget.w_bits=4 budget.a_bits=8 search.population=32 search.generations=50 out_dir=runs/r32-int",
         "lpq search search=none search.format=lp budget.w_bits=4 budget.a_bits=4 model=digits_cnn "
         "model.checkpoint=runs/cnn/model.pt out_dir=runs/cnn-uniform")),
    "reconstruct": CommandHelp(
        "learn the rounding of a fixed format assignment (AdaRound / BRECQ / QDrop on any code book), once",
        "the model's weights, calibration images (data), quant.config or uniform formats, quant.reconstruct",
        "out_dir/rounding.pt (read by lpq evaluate quant.rounding=...), out_dir/reconstruct.json (per-block errors)",
        ("model", "data", "calib", "quant"), ("device", "out_dir"),
        ("lpq reconstruct model=digits_cnn model.checkpoint=runs/cnn/model.pt quant.config=runs/cnn-lpq/qconfig.json "
         "quant.reconstruct=brecq out_dir=runs/cnn-lpq-brecq",
         "lpq reconstruct model=cifar_resnet32 model.checkpoint=resnet32-d509ac18.th data=cifar10 data.root=cifar10_jpeg "
         "quant.w_format='int<4>' quant.a_format='int<4>' quant.pin_first_last=true quant.per_channel=true "
         "quant.reconstruct=brecq quant.recon.iters=2000 out_dir=runs/r32-int4-brecq")),
    "hwsim": CommandHelp(
        "cycles, energy and area of a model's GEMM workload on an accelerator design (LPA and baselines)",
        "the model's architecture only (no weights), quant.config or uniform formats for the precisions",
        "out_dir/summary.json, out_dir/layers.csv, out_dir/comparison.png",
        ("model", "quant", "hw"), ("out_dir",),
        ("lpq hwsim model=digits_cnn quant.config=runs/cnn-lpq/qconfig.json hw=lpa out_dir=runs/cnn-hw",
         "lpq hwsim model=resnet18 hw=int8 hw/profile=ant_compat hw.batch=64 out_dir=runs/r18-int8")),
}

NOT_OPTIONS = {"hw": {"base", "ant_networks"}}  # files of a group that are shared settings or data, not options


def group_options(conf: Path, group: str) -> list[str]:
    """The selectable options of a config group: conf/<group>/*.yaml less NOT_OPTIONS."""
    return sorted(p.stem for p in (conf / group).glob("*.yaml") if p.stem not in NOT_OPTIONS.get(group, set()))


_INLINE = re.compile(r"^([A-Za-z_][\w]*):(.*?)(?:\s#\s?(.*))?$")


def _comments(path: Path) -> dict[str, str]:
    """Inline comments of the keys of a YAML file (`key: value  # comment`); a key one level down (indented under
    `parent:`) is `parent.key`."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    parent = None
    for line in path.read_text().splitlines():
        indented = line[:1] in (" ", "\t")
        m = _INLINE.match(line.strip())
        if not m:
            continue
        if not indented:
            parent = m.group(1)
        key = f"{parent}.{m.group(1)}" if indented and parent else m.group(1)
        if m.group(3) and m.group(1) != "defaults":
            out[key] = m.group(3).strip()
    return out


def _group_files(conf: Path, group: str, choice: str) -> list[Path]:
    """The YAML file of a group option and the files it inherits from (its `defaults` list), nearest first."""
    files, seen = [], set()
    todo = [conf / group / f"{choice}.yaml"]
    while todo:
        f = todo.pop(0)
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        files.append(f)
        data = OmegaConf.load(f)
        for item in data.get("defaults", []) or []:
            if isinstance(item, str) and item != "_self_":
                todo.append(f.parent / f"{item}.yaml")
    return files


def _value(v) -> str:
    """A raw (unresolved) config value as it would be written on the command line."""
    if isinstance(v, str):
        return v
    text = json.dumps(v, separators=(",", ":")).replace('"', "")
    return text if len(text) <= 70 else text[:67] + "..."


def _choices(conf: Path) -> dict[str, str]:
    """Selected option of each config group in conf/config.yaml's defaults list."""
    root = OmegaConf.load(conf / "config.yaml")
    out = {}
    for item in root.get("defaults", []):
        if isinstance(item, DictConfig):
            for k, v in item.items():
                out[str(k)] = str(v)
    return out


def render(command: str, conf: Path, cfg, overrides: list[str] = ()) -> str:
    """The help text of one command from the composed config `cfg` (defaults plus `overrides`) and the YAML files
    under `conf`."""
    h = COMMANDS_HELP[command]
    choices = _choices(conf)
    for item in overrides:  # group=option selections given before --help
        key, sep, value = item.partition("=")
        if sep and key.lstrip("+~") in choices:
            choices[key.lstrip("+~")] = value
    lines = [f"usage: lpq {command} [group=option] [key=value ...] out_dir=DIR", "", h.summary, "",
             f"reads:  {h.reads}", f"writes: {h.writes}", "",
             "Overrides use Hydra's grammar (group=option selects a file conf/<group>/<option>.yaml; key=value sets a "
             "key). Defaults below are those of conf/; an unknown key is refused with an error.", ""]
    root_comments = _comments(conf / "config.yaml")
    lines.append("keys:")
    for key in h.top_keys:
        value = OmegaConf.to_container(cfg, resolve=False).get(key) if key != "out_dir" else None
        lines.append(f"  {key} = {_value(value)}" + (f"    # {root_comments[key]}" if key in root_comments else ""))
    for group in h.groups:
        choice = choices.get(group, "")
        options = group_options(conf, group)
        lines += ["", f"{group}= (default {choice}; options: {', '.join(options)})"]
        comments: dict[str, str] = {}
        for f in sorted((conf / group).glob("*.yaml")):  # a key's description in any option of the group ...
            comments.update({k: v for k, v in _comments(f).items() if k not in comments})
        for f in reversed(_group_files(conf, group, choice)):  # ... unless the selected option says otherwise
            comments.update(_comments(f))
        node = cfg.get(group)
        raw = OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else {}
        for key, value in raw.items():
            if group == "hw" and key == "profile":
                lines.append(f"  hw/profile= (default {choices.get('hw/profile', 'default28')}; options: "
                             f"{', '.join(sorted(p.stem for p in (conf / 'hw' / 'profile').glob('*.yaml')))}): "
                             "energy, area and clock tables of the technology")
                continue
            note = comments.get(str(key), "")
            if isinstance(value, dict) and value:  # a nested block (quant.recon): one line per key
                lines.append(f"  {group}.{key}.*" + (f"    # {note}" if note else ""))
                for sub, v in value.items():
                    sub_note = comments.get(f"{key}.{sub}", "")
                    lines.append(f"    {group}.{key}.{sub} = {_value(v)}" + (f"    # {sub_note}" if sub_note else ""))
                continue
            lines.append(f"  {group}.{key} = {_value(value)}" + (f"    # {note}" if note else ""))
    lines += ["", "examples:", *[f"  {e}" for e in h.examples]]
    return "\n".join(lines) + "\n"
