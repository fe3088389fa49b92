"""`python -m lpq.pipeline.envrecord OUT --rule R --job KEY --digest D -- OVERRIDES...`: the job's env.json
(PIPELINE §8), written after the command succeeded. Reads versions via importlib.metadata (imports no torch)."""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import os
import platform
import socket
import subprocess
import sys

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


def env_record(rule: str, job: str, cfg_digest: str, overrides: list[str]) -> dict:
    return {
        "rule": rule, "job": job, "cfg_digest": cfg_digest, "overrides": overrides,
        "python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor() or None,
        "versions": {p: _version(p) for p in PACKAGES}, "git": git_info(),
        "hostname": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "written_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--rule", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--digest", required=True)
    args = sys.argv[1:] if argv is None else list(argv)
    overrides = args[args.index("--") + 1:] if "--" in args else []
    a = ap.parse_args(args[: args.index("--")] if "--" in args else args)
    atomic.write_json(a.out, env_record(a.rule, a.job, a.digest, overrides))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
