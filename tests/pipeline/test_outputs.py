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
    assert r["top1_std"] == 0.71  # sample std of 88 and 87
    single = next(r for r in rows if r["method"] == "none")
    assert single["seeds"] == 1 and single["top1_std"] is None


def test_search_rows_mean_over_seeds(tmp_path):
    import json

    root = tmp_path / "results" / "x"
    for seed, (ev, wall) in enumerate(((100, 60.0), (200, 90.0))):
        d = root / f"search/m/lp/w4a4-mix/s{seed}"
        d.mkdir(parents=True)
        (d / "search.json").write_text(json.dumps({"fitness": 1.0 + seed, "evaluations": ev, "generations_run": 5,
                                                   "wall_s": wall, "avg_w_bits": 4.0, "avg_a_bits": 3.5}))
    d = root / "search/m/int/w8a8/s0"
    d.mkdir(parents=True)
    (d / "search.json").write_text(json.dumps({"fitness": 2.0, "evaluations": 10}))  # older record: no wall_s
    rows = tables.search_rows(root)
    assert [(r["format"], r["budget"]) for r in rows] == [("lp", "w4a4-mix"), ("int", "w8a8")]
    assert rows[0] == {"model": "m", "format": "lp", "budget": "w4a4-mix", "seeds": 2, "fitness": 1.5,
                       "evaluations": 150.0, "generations": 5.0, "wall_s": 75.0, "avg_w_bits": 4.0, "avg_a_bits": 3.5}
    assert rows[1]["wall_s"] is None and rows[1]["evaluations"] == 10.0


def test_hardware_rows_normalised_to_baseline(fake_results):
    rows = tables.hardware_rows(fake_results, "ant")
    lpa = next(r for r in rows if r["design"] == "lpa" and r["model"] == "m1")
    assert lpa["perf_per_area_vs_ant"] == 2.0 and lpa["energy_eff_vs_ant"] == 1.5
    assert next(r for r in rows if r["design"] == "ant")["perf_per_area_vs_ant"] == 1.0


def test_build_writes_md_csv_tex(fake_results):
    tables.build(fake_results, "ant")
    for name in ("summary", "accuracy", "compression", "hardware", "hardware_vs_paper", "paired", "search"):
        for ext in ("md", "csv", "tex"):
            assert (fake_results / "tables" / f"{name}.{ext}").stat().st_size > 0
    with open(fake_results / "tables" / "accuracy.csv") as f:
        assert len(list(csv.DictReader(f))) == 8
    assert r"\begin{tabular}" in (fake_results / "tables" / "accuracy.tex").read_text()
    assert (fake_results / "tables" / "accuracy.md").read_text().startswith("| model |")


def test_figures_written(fake_results):
    assert figures.main([str(fake_results), "--hw-baseline", "ant"]) == 0
    for name in ("accuracy_vs_bits", "bit_allocation", "hardware", "hardware_vs_paper"):
        assert (fake_results / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_spec_bits():
    assert figures.spec_bits("lp<4,1,2,0.5>") == 4 and figures.spec_bits("int<8>@3.25") == 8
    assert figures.spec_bits("fp8_e4m3") == 8 and figures.spec_bits(None) is None


def test_summary_rows_pivot_lpq_and_uniform_per_family(fake_results):
    rows = tables.summary_rows(tables.accuracy_rows(fake_results))
    assert [(r["model"], r["budget"]) for r in rows] == [("m1", "w4a4"), ("m2", "w4a4")]
    m1 = rows[0]
    assert list(m1) == ["model", "budget", "fp32", "lp", "int"]  # families in the paper's order
    # lp: lpq mean of seeds 0/1 = 90 - 2 - 0.5 = 87.5, uniform (s0) = 88; int: 86.5 / 87
    assert m1["fp32"] == 90.0 and m1["lp"] == "87.5 / 88.0" and m1["int"] == "86.5 / 87.0"
    tables.build(fake_results, "ant")
    assert (fake_results / "tables" / "summary.md").read_text().startswith("| model | budget | fp32 | lp | int |")


def test_summary_rows_orders_budgets_and_marks_missing_reference():
    acc = [{"model": "m", "format": f, "budget": b, "method": me, "top1": 1.0, "fp32_top1": 2.0}
           for f in ("int", "lp") for b in ("w4a4", "w8a8", "w4a4-mix") for me in ("lpq", "none")
           if not (b.endswith("-mix") and me == "none")]
    rows = tables.summary_rows(acc)
    assert [r["budget"] for r in rows] == ["w8a8", "w4a4", "w4a4-mix"]
    assert rows[-1]["lp"] == "1.0 / –"


def test_family_colours_are_the_same_in_every_panel():
    """accuracy_vs_bits: a family keeps its colour across models even when the models have different families
    (the ResNet-32 panel with six families and the ResNet-44 panel with three once disagreed, under one legend)."""
    from lpq.pipeline.figures import family_colours

    rows = [{"model": "a", "format": f} for f in ("af", "ant", "fp", "int", "lp", "posit")]
    rows += [{"model": "b", "format": f} for f in ("fp", "int", "lp")]
    colours = family_colours(rows)
    assert len(set(colours.values())) == 6 and colours == family_colours(list(reversed(rows)))
    assert colours["lp"] == family_colours(rows[:6])["lp"]
