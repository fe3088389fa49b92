# Helper functions only (no rules): Hydra compose, grid, asset check, digests, paths, overrides (PIPELINE §4.2).
# The logic lives in lpq.pipeline.grid, which imports hydra/omegaconf only.
import os
import sys

from snakemake.exceptions import WorkflowError

from lpq.pipeline.grid import Grid

EXPERIMENT = str(config.get("experiment", "paper"))
OVERRIDES = [str(o) for o in (config.get("overrides") or [])]
GRID = Grid(EXPERIMENT, OVERRIDES)
EXP = GRID.name
TRACKING = bool(GRID.cfg.tracking.enabled)
# quant.reconstruct != none: a `reconstruct` job learns each evaluation point's rounding, its evaluate job reuses it
RECONSTRUCT = GRID.reconstruct

# Assets are checked before any job starts (file existence only; PIPELINE §9). `--lint` only reads the rules.
if "--lint" not in sys.argv:
    _missing = GRID.missing_assets()
    if _missing:
        raise WorkflowError(GRID.asset_message(_missing))


def res(rel):
    """results/<experiment>/<rel>"""
    return GRID.path(rel)


def logp(rule, rel):
    return f"logs/{EXP}/{rule}/{rel}.log"


def bench(rule, rel):
    return f"benchmarks/{EXP}/{rule}/{rel}.tsv"


def _wc(wildcards):
    return {k: v for k, v in wildcards.items()}


def out_dir(output):
    return os.path.dirname(output[0])


def job_key(rule):
    def f(wildcards):
        return os.path.join(rule, *(f"{k}={v}" for k, v in wildcards.items()))
    return f


def digest_for(stage):
    """params.cfg_digest: sha256 of the stage's config subtrees + wildcards (conf/stages.yaml)."""
    def f(wildcards):
        return GRID.cfg_digest(stage, _wc(wildcards))
    return f


def overrides_for(stage):
    """params.overrides: the job's Hydra override list, out_dir taken from the first output's directory."""
    def f(wildcards, output):
        wc = _wc(wildcards)
        io = {}
        if stage in ("evaluate", "reconstruct") and wc["fmt"] != "fp32":
            io["quant.config"] = eval_qconfig(wildcards)
            if stage == "evaluate" and RECONSTRUCT:
                io["quant.rounding"] = recon_rounding(wildcards)
        if stage in ("search", "reference"):
            io["calib.cache"] = res(f"calib/{wc['model']}/calib.pt")
        if stage == "hwsim":
            q = hw_qconfig(wildcards)
            if q:
                io["quant.config"] = q[0]
        return GRID.job_overrides(stage, wc, out_dir(output), io)
    return f


# --- inputs ----------------------------------------------------------------------------------------------------
def checkpoint_input(wildcards):
    """Embedded models: the train rule's checkpoint; timm models read local weights (checked at parse time)."""
    ck = GRID.checkpoint(wildcards.model)
    return [ck] if ck and ck.startswith(f"{GRID.root}/") else []


def eval_qconfig(wildcards):
    if wildcards.method == "lpq":
        return res(f"search/{wildcards.model}/{wildcards.fmt}/{wildcards.wa}/s{wildcards.seed}/qconfig.json")
    return res(f"ref/{wildcards.model}/{wildcards.fmt}/{wildcards.wa}/qconfig.json")


def recon_rounding(wildcards):
    """The learned rounding the `reconstruct` rule made for this evaluation point (quant.reconstruct != none)."""
    w = wildcards
    return res(f"recon/{w.model}/{w.method}/{w.fmt}/{w.wa}/s{w.seed}/rounding.pt")


def eval_inputs(wildcards):
    extra = [] if wildcards.fmt == "fp32" else [eval_qconfig(wildcards)]
    if RECONSTRUCT and wildcards.fmt != "fp32":
        extra.append(recon_rounding(wildcards))
    return checkpoint_input(wildcards) + extra


def recon_inputs(wildcards):
    return checkpoint_input(wildcards) + [eval_qconfig(wildcards)]


def hw_qconfig(wildcards):
    """The search qconfig a `precision_source: qconfig` design reads (HWMODEL §7.1); none for rule designs."""
    p = GRID.hw_point(wildcards.profile, wildcards.model, wildcards.design, wildcards.wa, wildcards.seed)
    if p is None or not p.qconfig_family:
        return []
    return [res(f"search/{p.model}/{p.qconfig_family}/{p.wa}/s{p.seed}/qconfig.json")]


# --- resources (callables of attempt, PIPELINE §3.5) -------------------------------------------------------------
def search_mem_mb(wildcards, attempt):
    return 16000 * attempt


def search_runtime(wildcards, attempt):
    return 720 * attempt


GPU = 0 if str(GRID.cfg.get("device", "cpu")) == "cpu" else 1


# --- targets ---------------------------------------------------------------------------------------------------
def eval_targets():
    return [res(f"eval/{m}/{me}/{f}/{b}/s{s}/metrics.json") for m, me, f, b, s in GRID.eval_points()]


def search_targets():
    return [res(f"search/{m}/{f}/{b}/s{s}/search.json") for m, f, b, s in GRID.search_points()]


def hw_targets():
    return [res(f"hw/{p.profile}/{p.model}/{p.design}/{p.wa}/s{p.seed}/summary.json") for p in GRID.hw_points()]


TABLE_NAMES = ["summary", "accuracy", "compression", "hardware", "hardware_vs_paper", "paired", "search"]
FIGURE_NAMES = ["accuracy_vs_bits", "bit_allocation", "hardware", "hardware_vs_paper"]


def histogram_targets():
    return [res(f"figures/weights_{m}_{b}_s{s}.png") for m, b, s in GRID.histogram_targets()]


def histogram_overrides(wildcards):
    """The model as `lpq evaluate` builds it (same global and model overrides)."""
    return [*GRID.job_global_overrides(), *GRID.structural("histograms", _wc(wildcards))]


def all_targets():
    t = [res(f"tables/{n}.{ext}") for n in TABLE_NAMES for ext in ("md", "csv", "tex")]
    t += [res(f"figures/{n}.png") for n in FIGURE_NAMES]
    t += histogram_targets()
    if TRACKING:
        t.append(res("mlflow_ingest.json"))
    return t


def results_dir(levels):
    """params.results: results/<experiment>, derived from the first output (`levels` directories up)."""
    def f(wildcards, output):
        d = output[0]
        for _ in range(levels):
            d = os.path.dirname(d)
        return d
    return f
