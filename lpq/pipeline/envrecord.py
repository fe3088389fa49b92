"""`python -m lpq.pipeline.envrecord OUT --rule R --job KEY --digest D [--start EPOCH] -- OVERRIDES...`: the
job's env.json (PIPELINE §8), written after the command succeeded. Reads versions via importlib.metadata and the
job's resolved config (`.hydra/config.yaml` next to OUT) as text: imports neither torch nor the model libraries,
so it adds well under 0.2 s to a job.

Recorded: rule, job key, cfg_digest, overrides; Python, platform; package versions; git commit/dirty/describe;
device (requested device, CPU model, GPU name via nvidia-smi when the job ran on CUDA, the CUDA version torch was
built with, cuDNN wheel version, the deterministic-algorithms setting of the CLI); hostname; SLURM job id; seeds
(`seed`, `calib.seed`); weights_source and data_source when the job's result file names them; UTC start (the
shell's `date +%s` before the command), end and wall time."""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path

from . import atomic

PACKAGES = ("torch", "torchvision", "timm", "numpy", "hydra-core", "omegaconf", "snakemake", "mlflow", "lpq")


def _version(pkg: str) -> str | None:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


def git_info() -> dict:
    def run(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    sha = run("rev-parse", "HEAD")
    dirty = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": sha or "unknown", "dirty": bool(dirty) if dirty is not None else None,
            "describe": run("describe", "--always", "--dirty") or "unknown"}


def _resolved_config(job_dir: Path) -> dict:
    path = job_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _gpu_names() -> list[str] | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line.strip() for line in out.splitlines() if line.strip()]


def _torch_cuda_version() -> str | None:
    """`torch.version.cuda`, read from torch/version.py as text (no torch import)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "version.py"
    try:
        m = re.search(r"^cuda(?::\s*\S+)?\s*=\s*['\"]([^'\"]+)['\"]", path.read_text(), re.M)
    except OSError:
        return None
    return m.group(1) if m else None


def _cudnn_version() -> str | None:
    for dist in ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12", "nvidia-cudnn-cu11"):
        v = _version(dist)
        if v:
            return v
    return None


def device_record(cfg: dict) -> dict:
    requested = str(cfg.get("device", "cpu"))
    return {"requested": requested, "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
            "gpus": _gpu_names() if requested.startswith("cuda") else None,
            "torch_cuda": _torch_cuda_version(), "cudnn": _cudnn_version(),
            "deterministic_algorithms": "warn_only"}


def _sources(job_dir: Path) -> dict:
    for name in ("metrics.json", "search.json", "train.json", "summary.json"):
        path = job_dir / name
        if path.is_file():
            try:
                obj = json.loads(path.read_text())
            except json.JSONDecodeError:
                continue
            found = {k: obj[k] for k in ("weights_source", "data_source") if isinstance(obj, dict) and k in obj}
            if found:
                return found
    return {}


def env_record(rule: str, job: str, cfg_digest: str, overrides: list[str], job_dir: Path | None = None,
               start: float | None = None) -> dict:
    cfg = _resolved_config(job_dir) if job_dir else {}
    end = dt.datetime.now(dt.timezone.utc)
    start_dt = dt.datetime.fromtimestamp(start, dt.timezone.utc) if start is not None else None
    calib = cfg.get("calib") if isinstance(cfg.get("calib"), dict) else {}
    return {
        "rule": rule, "job": job, "cfg_digest": cfg_digest, "overrides": overrides,
        "seeds": {"seed": cfg.get("seed"), "calib.seed": calib.get("seed")},
        "device": device_record(cfg),
        **(_sources(job_dir) if job_dir else {}),
        "start_utc": start_dt.isoformat(timespec="seconds") if start_dt else None,
        "end_utc": end.isoformat(timespec="seconds"),
        "wall_s": round((end - start_dt).total_seconds(), 1) if start_dt else None,
        "python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor() or None,
        "versions": {p: _version(p) for p in PACKAGES}, "git": git_info(),
        "hostname": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--rule", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--digest", required=True)
    ap.add_argument("--start", type=float, default=None, help="job start, seconds since the epoch (date +%%s)")
    args = sys.argv[1:] if argv is None else list(argv)
    overrides = args[args.index("--") + 1:] if "--" in args else []
    a = ap.parse_args(args[: args.index("--")] if "--" in args else args)
    out = Path(a.out)
    atomic.write_json(out, env_record(a.rule, a.job, a.digest, overrides, out.parent, a.start))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
