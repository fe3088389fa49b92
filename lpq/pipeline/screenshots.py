"""`python -m lpq.pipeline.screenshots results/<experiment> --out docs/img`: what a user sees, as PNGs for the docs —
MLflow's runs-comparison page (the searched evaluate runs of every family at one budget, side by side) served by a
real `mlflow server` over the workflow's database, and the Snakemake HTML report. Needs Debian's `chromium`
(headless); nothing here runs in the tests."""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

from . import atomic
from .mlflow_server import search_runs, serve

log = logging.getLogger("lpq")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("error: no chromium on PATH (Debian: apt-get install chromium)")


def screenshot(url: str, out: Path, size: str = "1600,1000", budget_ms: int = 20000) -> None:
    """Headless Chromium renders `url` (JavaScript given `budget_ms` of virtual time) and writes `out` atomically."""
    with tempfile.TemporaryDirectory(prefix="lpq-shot-") as tmp:
        png = Path(tmp) / "shot.png"
        cmd = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp}/profile", f"--window-size={size}", f"--virtual-time-budget={budget_ms}",
               f"--screenshot={png}", url]
        subprocess.run(cmd, check=True, capture_output=True, timeout=180)
        if not png.is_file() or png.stat().st_size < 10_000:
            raise RuntimeError(f"chromium wrote no usable screenshot of {url}")
        atomic.write_bytes(out, png.read_bytes())
    log.info("screenshot of %s -> %s", url, out)


def compare_url(url: str, experiment_id: str, run_ids: list[str]) -> str:
    runs = urllib.parse.quote(json.dumps(run_ids, separators=(",", ":")))
    exps = urllib.parse.quote(json.dumps([experiment_id], separators=(",", ":")))
    return f"{url}/#/compare-runs?runs={runs}&experiments={exps}"


def evaluate_runs(runs: list[dict], budget: str | None) -> tuple[str, list[str]]:
    """(budget, run ids) of the LPQ-searched evaluate runs at `budget` (default: the first mixed budget found) plus
    the FP32 reference, one per family, seed 0."""
    def params(r):
        return {p["key"]: p["value"] for p in r["data"].get("params", [])}

    evals = [r for r in runs if params(r).get("wc.method") == "lpq" and params(r).get("wc.seed") == "0"]
    if budget is None:
        mixed = sorted({params(r)["wc.wa"] for r in evals if params(r)["wc.wa"].endswith("-mix")})
        budget = mixed[0] if mixed else sorted({params(r)["wc.wa"] for r in evals})[0]
    chosen = sorted((r for r in evals if params(r)["wc.wa"] == budget), key=lambda r: params(r)["wc.fmt"])
    fp32 = [r for r in runs if params(r).get("wc.fmt") == "fp32"]
    return budget, [r["info"]["run_id"] for r in chosen + fp32[:1]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results/<experiment> of a finished workflow run")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--db", type=Path, help="MLflow SQLite file (default: <results>/../mlflow.db)")
    ap.add_argument("--budget", help="budget of the compared runs (default: the first mixed budget)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    experiment = args.results.resolve().name
    db = args.db or args.results.resolve().parent / "mlflow.db"
    with serve(db) as url:
        exp, runs = search_runs(url, f"lpa/{experiment}")
        budget, ids = evaluate_runs(runs, args.budget)
        if len(ids) < 2:
            raise SystemExit(f"error: fewer than two evaluate runs at budget {budget} in lpa/{experiment}")
        screenshot(compare_url(url, exp["experiment_id"], ids), args.out / f"mlflow_compare_{experiment}.png",
                   size="1600,1400")
        screenshot(f"{url}/#/experiments/{exp['experiment_id']}/runs", args.out / f"mlflow_runs_{experiment}.png")
    report = args.results / "report.html"
    if report.is_file():
        screenshot(report.resolve().as_uri(), args.out / f"snakemake_report_{experiment}.png")
    else:
        log.warning("no %s: run snakemake ... --report %s first for the report screenshot", report, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
