"""`python -m lpq.pipeline.tables results/<experiment>`: summary (main table: model x budget, `LPQ / uniform`
top-1 per family), accuracy (with the std over seeds), compression, hardware, hardware_vs_paper (the DAC'24 poster's
hardware numbers next to the dac24 / default28 / ant_compat profiles; computed by hwmodel, no result files needed),
search (fitness, evaluations, wall time) and paired (LPQ-searched LP against each searched baseline and
uniform LP on the same images: exact McNemar) tables as Markdown, CSV and LaTeX, built from the result files only
(PIPELINE §3.8). Seeds are averaged (mean, with their count) except in `paired`, which is per seed."""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from . import atomic
from .grid import parse_budget


def _load(p: Path) -> dict:
    return json.loads(p.read_text())


def accuracy_rows(root: Path) -> list[dict]:
    """One row per model x method x format x budget: mean top-1 over seeds, FP32 reference and drop."""
    groups: dict[tuple, list[dict]] = {}
    fp32: dict[str, float] = {}
    for p in sorted(root.glob("eval/*/*/*/*/s*/metrics.json")):
        model, method, fmt, wa, seed = p.parts[-6:-1]
        m = _load(p)
        if fmt == "fp32":
            fp32[model] = float(m["top1"])
            continue
        groups.setdefault((model, fmt, wa, method), []).append(m)
    rows = []
    for (model, fmt, wa, method), ms in sorted(groups.items()):
        top1 = statistics.fmean(float(m["top1"]) for m in ms)
        std = statistics.stdev(float(m["top1"]) for m in ms) if len(ms) > 1 else None
        ref = fp32.get(model)
        rows.append({"model": model, "format": fmt, "budget": wa, "method": method, "seeds": len(ms),
                     "top1": round(top1, 2), "top1_std": None if std is None else round(std, 2), "fp32_top1": ref, "drop": None if ref is None else round(ref - top1, 2),
                     "avg_w_bits": round(statistics.fmean(float(m.get("avg_w_bits") or 32) for m in ms), 3),
                     "avg_a_bits": round(statistics.fmean(float(m.get("avg_a_bits") or 32) for m in ms), 3),
                     "compression": round(statistics.fmean(float(m.get("compression") or 1) for m in ms), 3)})
    return rows


FAMILY_ORDER = ("lp", "int", "fp", "posit", "af", "ant")


def summary_rows(acc: list[dict]) -> list[dict]:
    """The main table: one row per model x budget, one column per format family with `LPQ / uniform` top-1
    (uniform = the `search=none` reference at the same width; `–` where a budget has none, e.g. mixed)."""
    fams = sorted({r["format"] for r in acc}, key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else 99, f))
    cells = {(r["model"], r["budget"], r["format"], r["method"]): r for r in acc}
    keys = sorted({(r["model"], r["budget"]) for r in acc},
                  key=lambda k: (k[0], -parse_budget(k[1])[0], parse_budget(k[1])[2], k[1]))
    rows = []
    for model, wa in keys:
        fp = next((r["fp32_top1"] for r in acc if r["model"] == model and r["fp32_top1"] is not None), None)
        row = {"model": model, "budget": wa, "fp32": fp}
        for fam in fams:
            lpq, ref = cells.get((model, wa, fam, "lpq")), cells.get((model, wa, fam, "none"))
            row[fam] = f"{_fmt(lpq and lpq['top1'])} / {_fmt(ref and ref['top1'])}"
        rows.append(row)
    return rows


def search_rows(root: Path) -> list[dict]:
    """One row per searched model x format x budget: means over seeds of the search's fitness, evaluations,
    generations, wall time (seconds, as the job ran) and the average bits of the returned config."""
    groups: dict[tuple, list[dict]] = {}
    for p in sorted(root.glob("search/*/*/*/s*/search.json")):
        model, fmt, wa, _ = p.parts[-5:-1]
        groups.setdefault((model, fmt, wa), []).append(_load(p))
    mean = lambda ss, k, nd: (round(statistics.fmean(float(s[k]) for s in ss), nd)
                              if all(s.get(k) is not None for s in ss) else None)
    keys = sorted(groups, key=lambda k: (k[0], FAMILY_ORDER.index(k[1]) if k[1] in FAMILY_ORDER else 99, k[1],
                                         -parse_budget(k[2])[0], k[2]))
    return [{"model": m, "format": f, "budget": wa, "seeds": len(groups[(m, f, wa)]),
             "fitness": mean(groups[(m, f, wa)], "fitness", 5), "evaluations": mean(groups[(m, f, wa)], "evaluations", 1),
             "generations": mean(groups[(m, f, wa)], "generations_run", 1), "wall_s": mean(groups[(m, f, wa)], "wall_s", 1),
             "avg_w_bits": mean(groups[(m, f, wa)], "avg_w_bits", 3), "avg_a_bits": mean(groups[(m, f, wa)], "avg_a_bits", 3)}
            for m, f, wa in keys]


def compression_rows(acc: list[dict]) -> list[dict]:
    return [{k: r[k] for k in ("model", "format", "budget", "method", "avg_w_bits", "avg_a_bits", "compression")}
            for r in acc]


def hardware_rows(root: Path, baseline: str) -> list[dict]:
    """Per profile x model x design x budget: performance/area and TOPS/W, normalised to `baseline` design."""
    recs = {}
    for p in sorted(root.glob("hw/*/*/*/*/s*/summary.json")):
        profile, model, design, wa, seed = p.parts[-6:-1]
        recs.setdefault((profile, model, design, wa), []).append(_load(p))
    rows = []
    for (profile, model, design, wa), ss in sorted(recs.items()):
        ppa = statistics.fmean(float(s["perf_per_area_gops_mm2"]) for s in ss)
        eff = statistics.fmean(float(s["tops_per_w"]) for s in ss)
        base = [v for (pr, mo, de, _), v in recs.items() if (pr, mo, de) == (profile, model, baseline)]
        bppa = statistics.fmean(float(s["perf_per_area_gops_mm2"]) for s in base[0]) if base else None
        beff = statistics.fmean(float(s["tops_per_w"]) for s in base[0]) if base else None
        rows.append({"profile": profile, "model": model, "design": design, "budget": wa, "seeds": len(ss),
                     "gops": round(statistics.fmean(float(s["gops"]) for s in ss), 2),
                     "perf_per_area_gops_mm2": round(ppa, 3), "tops_per_w": round(eff, 4),
                     f"perf_per_area_vs_{baseline}": None if not bppa else round(ppa / bppa, 3),
                     f"energy_eff_vs_{baseline}": None if not beff else round(eff / beff, 3)})
    return rows


def hardware_vs_paper_rows(batch: int = 64) -> list[dict]:
    """Per model x design x metric: the poster's value, the dac24, default28 and ant_compat values and
    dac24 / poster (hwmodel.paper; the workloads are the ANT artifact's ResNet-50 and ViT-B/16 lists)."""
    from hwmodel.paper import comparison_rows

    return comparison_rows(batch)


def paired_rows(root: Path, searched: str = "lp") -> list[dict]:
    """LPQ-searched `searched` (LP) against every other searched family and against uniform LP, on the same images,
    per model x budget x seed: discordant counts and the exact McNemar p (`lpq compare`)."""
    from .compare import load_predictions, paired

    rows = []
    for p in sorted(root.glob(f"eval/*/lpq/{searched}/*/s*/predictions.csv")):
        model, _, _, wa, seed = p.parts[-6:-1]
        ours = load_predictions(p, f"{searched} lpq")
        others = sorted(q for q in root.glob(f"eval/{model}/lpq/*/{wa}/{seed}/predictions.csv")
                        if q.parts[-4] != searched)
        others = [(q, f"{q.parts[-4]} lpq") for q in others]
        uniform = root / "eval" / model / "none" / searched / wa / "s0" / "predictions.csv"
        if uniform.is_file():
            others.append((uniform, f"{searched} uniform"))
        for q, name in others:
            r = paired(ours, load_predictions(q, name))
            rows.append({"model": model, "budget": wa, "seed": seed, "a": r["a"], "b": r["b"], "images": r["images"],
                         "top1_a": round(r["top1_a"], 2), "top1_b": round(r["top1_b"], 2), "only_a": r["only_a"],
                         "only_b": r["only_b"], "p_mcnemar": round(r["p_mcnemar"], 4)})
    return rows


def _fmt(v) -> str:
    return "–" if v is None else str(v)


def to_markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no results)\n"
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def to_latex(rows: list[dict]) -> str:
    esc = lambda s: str(s).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
    if not rows:
        return "% no results\n"
    cols = list(rows[0])
    lines = [r"\begin{tabular}{" + "l" * 4 + "r" * (len(cols) - 4) + "}", r"\toprule",
             " & ".join(esc(c) for c in cols) + r" \\", r"\midrule"]
    lines += [" & ".join(esc(_fmt(r[c])) for c in cols) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_table(out_dir: Path, name: str, rows: list[dict]) -> None:
    atomic.write_text(out_dir / f"{name}.md", to_markdown(rows))
    atomic.write_text(out_dir / f"{name}.tex", to_latex(rows))
    cols = list(rows[0]) if rows else []
    atomic.write_csv(out_dir / f"{name}.csv", cols, [[_fmt(r[c]) if r[c] is None else r[c] for c in cols] for r in rows])


def build(root: Path, baseline: str = "ant") -> dict[str, list[dict]]:
    acc = accuracy_rows(root)
    tables = {"summary": summary_rows(acc), "accuracy": acc, "compression": compression_rows(acc),
              "hardware": hardware_rows(root, baseline),
              "hardware_vs_paper": hardware_vs_paper_rows(), "paired": paired_rows(root), "search": search_rows(root)}
    out = root / "tables"
    for name, rows in tables.items():
        write_table(out, name, rows)
    return tables


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", type=Path)
    ap.add_argument("--hw-baseline", default="ant")
    a = ap.parse_args(argv)
    tables = build(a.results, a.hw_baseline)
    freeze = subprocess.run([sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    atomic.write_text(a.results / "tables" / "environment.txt", freeze)
    for name, rows in tables.items():
        print(f"{name}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
