"""Experiment grid for the Snakemake workflow (PIPELINE §3.2, §4.2, §4.4, §9).

Composes `conf/` once per experiment through Hydra's compose API, expands the grid into job points, builds
each job's override list and its config digest, and checks local assets. Imports hydra/omegaconf only (never
torch): the Snakefile calls it at parse time.
"""
from __future__ import annotations

import functools
import glob
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from omegaconf import OmegaConf

from ..config import compose as lpq_compose, conf_dir

WA_PATTERN = r"w\d+(\.\d+)?a\d+(\.\d+)?(-mix)?"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".th")


def parse_budget(wa: str) -> tuple[float, float, bool]:
    """`w4a4` -> (4, 4, fixed width); `w4.5a6-mix` -> (4.5, 6, mixed average budget) (LPQ §4.3)."""
    m = re.fullmatch(r"w(\d+(?:\.\d+)?)a(\d+(?:\.\d+)?)(-mix)?", wa)
    if not m:
        raise ValueError(f"budget {wa!r} is invalid: need w<bits>a<bits> or w<bits>a<bits>-mix, e.g. w4a4-mix")
    return float(m.group(1)), float(m.group(2)), bool(m.group(3))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def budget_overrides(wa: str) -> list[str]:
    w, a, mixed = parse_budget(wa)
    return [f"budget.w_bits={_num(w)}", f"budget.a_bits={_num(a)}", f"search.mixed={'true' if mixed else 'false'}"]


def config_text(cfg, keys: Iterable[str], version: int) -> str:
    """Resolved, key-sorted YAML of the config subtrees `keys` plus the stage version. A key written `-a.b` leaves
    the sub-key b out of subtree a (quant.reconstruct is the evaluate stage's business, not the search's)."""
    keys = list(keys)
    drop = [k[1:] for k in keys if k.startswith("-")]
    sub = {}
    for k in keys:
        if k.startswith("-"):
            continue
        node = OmegaConf.select(cfg, k)
        if OmegaConf.is_config(node):
            node = OmegaConf.to_container(node, resolve=True)
            for d in drop:
                head, _, leaf = d.rpartition(".")
                if head == k and isinstance(node, dict):
                    node.pop(leaf, None)
        sub[k] = node
    text = OmegaConf.to_yaml(OmegaConf.create({"cfg": sub}), resolve=True, sort_keys=True)
    return text + f"version: {int(version)}\n"


def digest(cfg, keys: Iterable[str], version: int, wildcards: dict | None = None, text: str | None = None) -> str:
    """sha256 (16 hex) of the resolved, sorted YAML of the config subtrees `keys`, the stage version and the
    job's wildcard values (PIPELINE §4.4)."""
    text = config_text(cfg, keys, version) if text is None else text
    for k in sorted(wildcards or {}):
        text += f"wc.{k}: {wildcards[k]}\n"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HwPoint:
    profile: str
    model: str
    design: str
    wa: str
    seed: int
    qconfig_family: str | None  # family whose search qconfig the design reads (precision_source: qconfig)


class Grid:
    """The composed experiment: grid lists, paths, per-job overrides and digests."""

    def __init__(self, experiment: str = "paper", overrides: Iterable[str] = (), conf: str | os.PathLike | None = None):
        self.conf = Path(conf).resolve() if conf else conf_dir()
        self.global_overrides = [f"experiment={experiment}", *[str(o) for o in overrides]]
        self.cfg = self.compose(())
        if self.cfg.get("experiment") is None:
            raise ValueError(f"experiment={experiment!r} has no grid (conf/experiment/{experiment}.yaml)")
        e = self.cfg.experiment
        self.name = str(e.name)
        self.models = [str(m) for m in e.models]
        self.formats = [str(f) for f in e.formats]
        self.budgets = [str(b) for b in e.budgets]
        refs = e.get("reference_budgets")
        self.reference_budgets = ([b for b in self.budgets if not parse_budget(b)[2]] if refs is None
                                  else [str(b) for b in refs])
        for b in [*self.budgets, *self.reference_budgets]:
            parse_budget(b)
        mixed_refs = [b for b in self.reference_budgets if parse_budget(b)[2]]
        if mixed_refs:
            raise ValueError(f"experiment.reference_budgets={mixed_refs} is invalid: uniform references have a fixed "
                             "width (w<bits>a<bits>, no -mix)")
        self.seeds = [int(s) for s in e.seeds]
        self.designs = [str(d) for d in e.designs]
        self.profiles = [str(p) for p in e.profiles]
        self.stages = OmegaConf.load(self.conf / "stages.yaml")
        self.root = f"results/{self.name}"
        # quant.reconstruct=adaround|brecq|qdrop: a `reconstruct` stage between search/reference and evaluate
        self.reconstruct = str(self.cfg.quant.get("reconstruct", "none") or "none").lower() not in ("none", "false")

    # --- composition -------------------------------------------------------------------------------------------
    @functools.lru_cache(maxsize=None)
    def compose(self, extra: tuple[str, ...]):
        prev = os.environ.get("LPQ_CONF_DIR")
        os.environ["LPQ_CONF_DIR"] = str(self.conf)
        try:
            return lpq_compose([*self.global_overrides, *extra])
        finally:
            if prev is None:
                os.environ.pop("LPQ_CONF_DIR", None)
            else:
                os.environ["LPQ_CONF_DIR"] = prev

    def model_cfg(self, model: str):
        return self.compose((f"model={model}",)).model

    def hw_cfg(self, design: str, profile: str):
        return self.compose((f"hw={design}", f"hw/profile={profile}")).hw

    # --- grid --------------------------------------------------------------------------------------------------
    def fixed_budgets(self) -> list[str]:
        """Budgets of the uniform `search=none` references: experiment.reference_budgets, by default the fixed
        (non-mixed) budgets of experiment.budgets."""
        return list(self.reference_budgets)

    def search_points(self) -> list[tuple[str, str, str, int]]:
        return [(m, f, b, s) for m in self.models for f in self.formats for b in self.budgets for s in self.seeds]

    def eval_points(self) -> list[tuple[str, str, str, str, int]]:
        """(model, method, fmt, wa, seed): searched, uniform references (`none`, s0) and FP32 per model."""
        pts = [(m, "lpq", f, b, s) for m, f, b, s in self.search_points()]
        pts += [(m, "none", f, b, 0) for m in self.models for f in self.formats for b in self.fixed_budgets()]
        pts += [(m, "none", "fp32", "w32a32", 0) for m in self.models]
        return pts

    def histogram_budget(self) -> str | None:
        """The LP search budget whose weights are drawn with their code points: the first mixed budget, else the
        smallest fixed one; None when `lp` is not in the grid."""
        if "lp" not in self.formats or not self.budgets:
            return None
        mixed = [b for b in self.budgets if parse_budget(b)[2]]
        return mixed[0] if mixed else min(self.budgets, key=lambda b: parse_budget(b)[:2])

    def histogram_targets(self) -> list[tuple[str, str, int]]:
        """(model, wa, seed) of each weight-histogram figure (first seed)."""
        wa = self.histogram_budget()
        return [] if wa is None else [(m, wa, self.seeds[0]) for m in self.models]

    def hw_points(self) -> list[HwPoint]:
        return list(self._hw_points())

    def hw_point(self, profile: str, model: str, design: str, wa: str, seed: int | str) -> HwPoint | None:
        return self._hw_index().get((profile, model, design, wa, int(seed)))

    @functools.lru_cache(maxsize=None)
    def _hw_index(self) -> dict:
        return {(p.profile, p.model, p.design, p.wa, p.seed): p for p in self._hw_points()}

    @functools.lru_cache(maxsize=None)
    def _hw_points(self) -> tuple[HwPoint, ...]:
        pts = []
        for p in self.profiles:
            for d in self.designs:
                hw = self.hw_cfg(d, p)
                families = [str(f) for f in hw.family]
                for m in self.models:
                    if str(hw.precision_source) == "qconfig":
                        fam = next((f for f in families if f in self.formats), None)
                        if fam is None:
                            continue  # no searched family this design can execute
                        pts += [HwPoint(p, m, d, b, s, fam) for b in self.budgets for s in self.seeds]
                    else:
                        bits = int(hw.rule.default)
                        pts.append(HwPoint(p, m, d, f"w{bits}a{bits}", 0, None))
        return tuple(pts)

    def wildcard_constraints(self) -> dict[str, str]:
        alt = lambda names: "|".join(re.escape(n) for n in sorted(set(names), key=lambda s: (-len(s), s)))
        return {"model": alt(self.models), "fmt": alt([*self.formats, "fp32"]), "design": alt(self.designs),
                "profile": alt(self.profiles), "method": "lpq|none", "wa": WA_PATTERN, "seed": r"\d+"}

    # --- paths and overrides -----------------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def checkpoint(self, model: str) -> str | None:
        """Weights passed as model.checkpoint: the train rule's output (embedded), <weights_dir>/<model>.* (timm,
        when the experiment names a weights_dir), else None (local Hugging Face cache)."""
        mc = self.model_cfg(model)
        if mc.get("kind") == "embedded":
            return self.path(f"train/{model}/model.pt")
        wd = self.cfg.experiment.get("weights_dir")
        if mc.get("kind") == "cifar_resnet" and wd and not mc.get("checkpoint"):
            return cifar_checkpoint(Path(str(wd)), model, int(mc.depth))
        if mc.get("kind") == "timm" and wd:
            for suf in WEIGHT_SUFFIXES:
                cand = Path(str(wd)) / f"{model}{suf}"
                if cand.is_file():
                    return str(cand)
            return str(Path(str(wd)) / f"{model}.safetensors")
        return mc.get("checkpoint")

    def model_overrides(self, model: str) -> list[str]:
        ck = self.checkpoint(model)
        return [f"model={model}"] + ([f"model.checkpoint={ck}"] if ck else [])

    def job_overrides(self, stage: str, wc: dict, out_dir: str, io: dict | None = None) -> list[str]:
        """The override list of one job: global overrides, then the stage's structural and wildcard values."""
        s = self.structural(stage, wc)
        dyn = []
        if stage in ("search", "reference"):
            dyn += budget_overrides(wc["wa"])
            if stage == "reference":
                dyn = [o for o in dyn if not o.startswith("search.mixed")] + ["search.mixed=false"]
            dyn += [f"seed={wc.get('seed', 0)}"]
            if stage == "search":
                dyn.append("search.resume=true")
        elif stage == "train":
            dyn.append("seed=0")
        for k, v in (io or {}).items():
            dyn.append(f"{k}={v}")
        return [*self.job_global_overrides(), *s, *dyn, f"out_dir={out_dir}"]

    def job_global_overrides(self) -> list[str]:
        """Global overrides passed to jobs: grid keys (`experiment.*`) only shape the DAG, so narrowing the grid
        from the command line changes no job's params (no spurious reruns)."""
        return [o for o in self.global_overrides if not o.lstrip("+~").startswith("experiment.")]

    def structural(self, stage: str, wc: dict) -> list[str]:
        """Overrides that select config groups (composed for the digest); bits and seeds stay wildcard values."""
        if stage == "train":
            return [f"model={wc['model']}"]
        if stage in ("search", "reference"):
            return [*self.model_overrides(wc["model"]), "search=" + ("lpq" if stage == "search" else "none"),
                    f"search.format={wc['fmt']}"]
        if stage in ("evaluate", "reconstruct", "histograms", "calibrate"):
            return self.model_overrides(wc["model"])
        if stage == "hwsim":
            return [f"model={wc['model']}", f"hw={wc['design']}", f"hw/profile={wc['profile']}",
                    f"hw.batch={int(self.cfg.experiment.batch)}"]
        return []

    def cfg_digest(self, stage: str, wc: dict) -> str:
        return digest(None, (), 0, wc, text=self._stage_text(stage, tuple(self.structural(stage, wc))))

    @functools.lru_cache(maxsize=None)
    def _stage_text(self, stage: str, structural: tuple[str, ...]) -> str:
        """Composed once per distinct config-group combination; bits and seeds enter as wildcard values."""
        st = self.stages[stage]
        return config_text(self.compose(structural), list(st["keys"]), int(st["version"]))

    # --- assets (PIPELINE §9) ----------------------------------------------------------------------------------
    def missing_assets(self) -> list[str]:
        """File-existence check of every model's weights and every data root; one line per missing asset."""
        missing = []
        data = self.cfg.data
        if data.get("kind") == "cifar10":
            problem = cifar10_layout_problem(OmegaConf.select(self.cfg, "data.root"), str(data.get("calib_split", "auto")))
            if problem:
                missing.append(f"images: {problem}")
        if data.get("kind") == "imagefolder":
            for key in ("val_root", "calib_root"):
                root = OmegaConf.select(self.cfg, f"data.{key}")
                if root in (None, "???") or not Path(str(root)).is_dir() or not any(Path(str(root)).iterdir()):
                    missing.append(f"images: data.{key}={root} is missing or empty (ImageNet-style <root>/<class>/<image> folders)")
        for m in self.models:
            mc = self.model_cfg(m)
            kind = mc.get("kind")
            if kind == "timm":
                ck = self.checkpoint(m)
                if ck:
                    if not Path(ck).is_file():
                        missing.append(f"weights: {m}: {ck} does not exist")
                elif not hf_cache_has(str(mc.name)):
                    missing.append(f"weights: {m}: no model.checkpoint and nothing in the local Hugging Face cache "
                                   f"({hf_cache_dir()}/models--timm--{mc.name}*)")
            elif kind == "cifar_resnet":
                ck = self.checkpoint(m)
                if not ck:
                    missing.append(f"weights: {m}: no model.checkpoint and no experiment.weights_dir (LPA_CIFAR_WEIGHTS): "
                                   f"need resnet{mc.depth}-<hash>.th")
                elif not Path(ck).is_file():
                    missing.append(f"weights: {m}: {ck} does not exist")
            elif kind == "python":
                entry = str(mc.get("entry") or "").split(":")[0]
                if not entry or not Path(entry).is_file():
                    missing.append(f"model: {m}: model.entry file {entry!r} does not exist")
        return missing

    def asset_message(self, missing: list[str]) -> str:
        lines = "\n".join(f"  - {x}" for x in missing)
        if self.cfg.data.get("kind") == "cifar10":
            return (f"experiment={self.name}: required local assets are missing, nothing was started "
                    f"(nothing is ever downloaded at run time, and no random weights are substituted):\n{lines}\n"
                    "What to do:\n"
                    "  - weights: the pretrained CIFAR-10 ResNets resnet{20,32,44,56,110}-<hash>.th are published in "
                    "the GitHub repository akamaster/pytorch_resnet_cifar10, folder pretrained_models/ (BSD-2); put "
                    "them in one folder and set LPA_CIFAR_WEIGHTS=<folder> (experiment.weights_dir);\n"
                    "  - images: CIFAR-10 as the python batches (cifar-10-batches-py/ from the dataset's home page, "
                    "A. Krizhevsky, University of Toronto) or image folders <dir>/test/<class>/ with "
                    "<dir>/train/<class>/ or <dir>/calib/<class>/; set LPA_CIFAR10=<dir> (data.root);\n"
                    "  - both pretrained weights and images are in the project's real-model pack layout "
                    "(README, 'Real networks'); `make demo` runs the demo experiment fully offline.")
        return (f"experiment={self.name}: required local assets are missing, nothing was started "
                f"(nothing is ever downloaded at run time, and no random weights are substituted):\n{lines}\n"
                "What to do:\n"
                "  - weights: on a connected machine `huggingface-cli download timm/<model>` (copy the Hugging Face "
                "cache, HF_HOME) or put <model>.safetensors files in a folder and set LPA_WEIGHTS_DIR=<folder> "
                "(experiment.weights_dir);\n"
                "  - images: ImageNet validation and a calibration split as <root>/<class>/<image>; set "
                "LPA_IMAGENET=<dir> with <dir>/val and <dir>/train, or override data.val_root/data.calib_root via "
                "--config 'overrides=[\"data.val_root=...\"]';\n"
                "  - see README (workflow section). `make demo` runs the demo experiment fully offline.")


def cifar_checkpoint(weights_dir: Path, model: str, depth: int) -> str:
    """<weights_dir>/<model>.<suffix>, else the published name resnet<depth>-<hash>.th (or resnet<depth>.th), else
    the expected path."""
    for suf in WEIGHT_SUFFIXES:
        cand = weights_dir / f"{model}{suf}"
        if cand.is_file():
            return str(cand)
    base = glob.escape(str(weights_dir))
    published = sorted(glob.glob(os.path.join(base, f"resnet{depth}-*.th"))) + \
        sorted(glob.glob(os.path.join(base, f"resnet{depth}.th")))  # the name of older commits
    return published[0] if published else str(weights_dir / f"resnet{depth}-<hash>.th")


def cifar10_layout_problem(root, calib_split: str = "auto") -> str | None:
    """Why data.root is not a CIFAR-10 folder (lpq.data.cifar10_layout.locate), or None."""
    from ..data.cifar10_layout import locate

    try:
        locate(root, calib_split)
    except ValueError as err:
        return str(err)
    return None


def hf_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def hf_cache_has(name: str) -> bool:
    """True when a timm/<name>* repository in the local HF cache holds a weights file (file existence only)."""
    pattern = os.path.join(glob.escape(hf_cache_dir()), f"models--timm--{glob.escape(name)}*", "snapshots", "*", "*")
    return any(p.endswith(WEIGHT_SUFFIXES) for p in glob.glob(pattern))
