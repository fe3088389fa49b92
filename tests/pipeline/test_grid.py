"""Grid expansion, budgets, config digests and the asset check (PIPELINE §3.2, §4.4, §9)."""
from __future__ import annotations

import shutil

import pytest

from lpq.pipeline.grid import Grid, budget_overrides, parse_budget

from .conftest import REPO


@pytest.mark.parametrize("wa,expected", [("w4a4", (4.0, 4.0, False)), ("w4a4-mix", (4.0, 4.0, True)),
                                         ("w4.5a6-mix", (4.5, 6.0, True)), ("w8a8", (8.0, 8.0, False))])
def test_parse_budget(wa, expected):
    assert parse_budget(wa) == expected


def test_budget_overrides_and_bad_budget():
    assert budget_overrides("w4a4-mix") == ["budget.w_bits=4", "budget.a_bits=4", "search.mixed=true"]
    with pytest.raises(ValueError, match="w4x4"):
        parse_budget("w4x4")


def test_demo_grid_expansion():
    g = Grid("demo")
    assert g.name == "demo" and g.models == ["digits_cnn", "digits_vit"]
    assert set(g.formats) == {"lp", "int", "fp", "posit", "af", "ant"}
    assert g.budgets == ["w8a8", "w6a6", "w4a4", "w4a4-mix"]
    n_search = 2 * 6 * 4 * len(g.seeds)
    assert len(g.search_points()) == n_search
    # searched + references (fixed budgets only, s0) + FP32 per model: every family gets the same rows
    assert len(g.eval_points()) == n_search + 2 * 6 * 3 + 2
    fams = {(m, f) for m, me, f, b, s in g.eval_points() if me == "none" and f != "fp32"}
    assert fams == {(m, f) for m in g.models for f in g.formats}
    hw = g.hw_points()
    lpa = [p for p in hw if p.design == "lpa"]
    assert len(lpa) == 2 * 4 * len(g.seeds) and all(p.qconfig_family == "lp" for p in lpa)
    assert all(p.qconfig_family is None and p.seed == 0 for p in hw if p.design != "lpa")


def test_job_overrides_search():
    g = Grid("smoke")
    ov = g.job_overrides("search", {"model": "digits_cnn", "fmt": "lp", "wa": "w4a4-mix", "seed": "0"}, "out/x")
    assert ov[0] == "experiment=smoke"
    for item in ("model=digits_cnn", "model.checkpoint=results/smoke/train/digits_cnn/model.pt", "search=lpq",
                 "search.format=lp", "search.mixed=true", "search.resume=true", "out_dir=out/x"):
        assert item in ov
    ref = g.job_overrides("reference", {"model": "digits_cnn", "fmt": "int", "wa": "w4a4"}, "o")
    assert "search=none" in ref and "search.mixed=false" in ref


def test_global_overrides_narrow_grid():
    g = Grid("demo", ["experiment.budgets=[w4a4]", "experiment.models=[digits_cnn]"])
    assert g.budgets == ["w4a4"] and g.models == ["digits_cnn"]
    full = Grid("demo")
    wc = {"model": "digits_cnn", "fmt": "lp", "wa": "w4a4", "seed": "0"}
    assert g.job_overrides("search", wc, "o") == full.job_overrides("search", wc, "o")  # no spurious reruns
    assert g.cfg_digest("search", wc) == full.cfg_digest("search", wc)


def test_digest_changes_only_for_affected_jobs(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    jobs = [("search", {"model": m, "fmt": f, "wa": "w4a4", "seed": "0"}) for m in ("digits_cnn", "digits_vit")
            for f in ("lp", "int")]
    jobs += [("hwsim", {"profile": "default28", "model": m, "design": "int8", "wa": "w8a8", "seed": "0"})
             for m in ("digits_cnn", "digits_vit")]
    before = {(s, tuple(w.items())): Grid("demo", conf=conf).cfg_digest(s, w) for s, w in jobs}
    again = {(s, tuple(w.items())): Grid("demo", conf=conf).cfg_digest(s, w) for s, w in jobs}
    assert before == again  # deterministic
    p = conf / "model" / "digits_vit.yaml"
    p.write_text(p.read_text().replace("taps: null", "taps: [blocks.0]"))
    after = {(s, tuple(w.items())): Grid("demo", conf=conf).cfg_digest(s, w) for s, w in jobs}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {k for k in before if k[0] == "search" and dict(k[1])["model"] == "digits_vit"}


def test_digest_depends_on_wildcards():
    g = Grid("smoke")
    a = g.cfg_digest("search", {"model": "digits_cnn", "fmt": "lp", "wa": "w4a4", "seed": "0"})
    b = g.cfg_digest("search", {"model": "digits_cnn", "fmt": "lp", "wa": "w4a4", "seed": "1"})
    assert a != b and len(a) == 16


def test_stage_version_bump_changes_digest(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    wc = {"model": "digits_cnn", "fmt": "lp", "wa": "w4a4", "seed": "0"}
    a = Grid("smoke", conf=conf).cfg_digest("search", wc)
    p = conf / "stages.yaml"
    text = p.read_text()
    assert "search: {version: 3" in text
    p.write_text(text.replace("search: {version: 3", "search: {version: 4"))
    assert Grid("smoke", conf=conf).cfg_digest("search", wc) != a


def test_asset_check_paper_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("LPA_IMAGENET", str(tmp_path / "nope"))
    monkeypatch.delenv("LPA_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    g = Grid("paper")
    missing = g.missing_assets()
    assert any("data.val_root" in m for m in missing)
    assert sum(m.startswith("weights:") for m in missing) == len(g.models) == 6
    msg = g.asset_message(missing)
    assert "huggingface-cli download" in msg and "make demo" in msg and "LPA_WEIGHTS_DIR" in msg


def test_asset_check_paper_present(monkeypatch, fake_assets):
    g = Grid("paper")
    assert g.missing_assets() == []
    assert g.checkpoint("resnet18").endswith("resnet18.safetensors")


def test_asset_check_hf_cache(monkeypatch, tmp_path):
    snap = tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(b"x")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("LPA_WEIGHTS_DIR", raising=False)
    g = Grid("paper")
    missing = g.missing_assets()
    assert not any("resnet18:" in m for m in missing) and any("resnet50:" in m for m in missing)


def test_demo_needs_no_assets():
    assert Grid("demo").missing_assets() == []


def test_reconstruction_changes_only_the_evaluate_digest():
    """quant.reconstruct / quant.recon.* (and quant.rounding) reach every job through the global overrides, but only
    evaluate jobs reconstruct: search and reference digests must not move (no spurious reruns), evaluate's must."""
    wc_s = {"model": "digits_cnn", "fmt": "lp", "wa": "w4a4", "seed": "0"}
    wc_e = {"model": "digits_cnn", "method": "search", "fmt": "lp", "wa": "w4a4", "seed": "0"}
    plain = Grid("smoke")
    recon = Grid("smoke", overrides=["quant.reconstruct=brecq", "quant.recon.iters=100"])
    assert recon.cfg_digest("search", wc_s) == plain.cfg_digest("search", wc_s)
    assert recon.cfg_digest("reference", wc_s) == plain.cfg_digest("reference", wc_s)
    assert recon.cfg_digest("evaluate", wc_e) != plain.cfg_digest("evaluate", wc_e)
    other = Grid("smoke", overrides=["quant.unsigned_acts=off"])  # a quant key that does change the search
    assert other.cfg_digest("search", wc_s) != plain.cfg_digest("search", wc_s)
