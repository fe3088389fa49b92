"""Tables and figures from a fake results tree (PIPELINE §3.8)."""
from __future__ import annotations

import csv

from lpq.pipeline import figures, tables


def test_accuracy_rows_mean_over_seeds_and_drop(fake_results):
    rows = tables.accuracy_rows(fake_results)
    assert len(rows) == 2 * 2 * 2  # models x formats x methods (FP32 is the reference column)
    r = next(r for r in rows if (r["model"], r["format"], r["method"]) == ("m1", "lp", "lpq"))
    assert r["seeds"] == 2 and r["top1"] == 87.5 and r["fp32_top1"] == 90.0 and r["drop"] == 2.5
    assert r["compression"] == 8.0


def test_hardware_rows_normalised_to_baseline(fake_results):
    rows = tables.hardware_rows(fake_results, "ant")
    lpa = next(r for r in rows if r["design"] == "lpa" and r["model"] == "m1")
    assert lpa["perf_per_area_vs_ant"] == 2.0 and lpa["energy_eff_vs_ant"] == 1.5
    assert next(r for r in rows if r["design"] == "ant")["perf_per_area_vs_ant"] == 1.0


def test_build_writes_md_csv_tex(fake_results):
    tables.build(fake_results, "ant")
    for name in ("accuracy", "compression", "hardware"):
        for ext in ("md", "csv", "tex"):
            assert (fake_results / "tables" / f"{name}.{ext}").stat().st_size > 0
    with open(fake_results / "tables" / "accuracy.csv") as f:
        assert len(list(csv.DictReader(f))) == 8
    assert r"\begin{tabular}" in (fake_results / "tables" / "accuracy.tex").read_text()
    assert (fake_results / "tables" / "accuracy.md").read_text().startswith("| model |")


def test_figures_written(fake_results):
    assert figures.main([str(fake_results), "--hw-baseline", "ant"]) == 0
    for name in ("accuracy_vs_bits", "bit_allocation", "hardware"):
        assert (fake_results / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_spec_bits():
    assert figures.spec_bits("lp<4,1,2,0.5>") == 4 and figures.spec_bits("int<8>@3.25") == 8
    assert figures.spec_bits("fp8_e4m3") == 8 and figures.spec_bits(None) is None
