"""`lpq hwsim` end to end, in process (HWMODEL §1.4, §8; PIPELINE §4.3): every design on the embedded
models (shapes only, no weights), byte-identical outputs, qconfig / uniform / rule precisions,
overrides, and exit code 2 with a message naming the problem."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lpq.cli import main

DESIGNS = ("lpa", "int8", "fp8", "bitfusion", "ant", "ant_ws", "adafloat", "olaccel", "biscaled", "lp8")
CNN_UNITS = ["stem.0", "layer1.conv1", "layer1.conv2", "layer2.conv1", "layer2.conv2", "layer2.shortcut.0", "fc"]
OUTPUTS = ("layers.csv", "summary.json", "comparison.png")


def _run(tmp: Path, *overrides: str) -> dict:
    rc = main(["hwsim", *overrides, f"out_dir={tmp}"])
    assert rc == 0
    assert all((tmp / f).is_file() for f in OUTPUTS)
    return json.loads((tmp / "summary.json").read_text())


def _layers(tmp: Path) -> list[dict]:
    with open(tmp / "layers.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("design", DESIGNS)
def test_every_design_on_digits_cnn(tmp_path, design):
    s = _run(tmp_path, "model=digits_cnn", f"hw={design}", "hw.batch=16")
    assert s["meta"]["design"] == design and s["meta"]["batch"] == 16 and s["layers"] == 7
    assert set(s["norm"]) == {"ant", "adafloat"}
    assert s["cycles"]["total"] == s["cycles"]["compute"] + s["cycles"]["stall"]
    e = s["energy_pj"]
    assert e["total"] == pytest.approx(e["compute"] + e["sram"] + e["dram"] + e["static"])
    assert [r["name"] for r in _layers(tmp_path)] == CNN_UNITS


def test_outputs_are_byte_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _run(a, "model=digits_vit", "hw=lpa")
    _run(b, "model=digits_vit", "hw=lpa")
    for f in OUTPUTS:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_checkpoint_is_not_needed_and_attention_is_simulated(tmp_path):
    s = _run(tmp_path, "model=digits_vit", "hw=ant", "hw/profile=ant_compat", "model.checkpoint=/nonexistent.pt")
    ops = {r["op"] for r in _layers(tmp_path)}
    assert {"attn_qk", "attn_av", "linear", "conv"} <= ops and s["meta"]["profile"] == "ant_compat"


def _qconfig(tmp: Path) -> Path:
    layers = {name: {"w": "lp<4,1,2,0.5>", "a": "lp<4,0,3,-1>"} for name in CNN_UNITS}
    layers["stem.0"] = {"w": "lp<8,1,3,0>", "a": "lp<8,1,3,0.25>"}
    layers["layer1.conv2"] = {"w": "lp<2,0,1,0>@ch", "w_sf": [0.0] * 16, "a": "lp<3,0,2,0>"}
    del layers["fc"]
    path = tmp / "qconfig.json"
    path.write_text(json.dumps({"schema_version": 1, "layers": layers}))
    return path


def test_qconfig_precisions_and_lanes(tmp_path):
    q = _qconfig(tmp_path)
    s = _run(tmp_path, "model=digits_cnn", "hw=lpa", f"quant.config={q}")
    rows = {r["name"]: r for r in _layers(tmp_path)}
    assert (rows["stem.0"]["b_a"], rows["stem.0"]["b_w"], rows["stem.0"]["P"]) == ("8", "8", "1.0")
    assert (rows["layer1.conv1"]["b_a_lane"], rows["layer1.conv1"]["P"]) == ("4", "4.0")
    assert (rows["layer1.conv2"]["b_a"], rows["layer1.conv2"]["b_a_lane"], rows["layer1.conv2"]["b_w_lane"],
            rows["layer1.conv2"]["P"]) == ("3", "4", "2", "8.0")
    assert rows["fc"]["unquantized"] == "true" and rows["fc"]["b_w"] == "8"
    assert s["meta"]["precision_source"] == "qconfig" and s["unquantized_layers"] == 1


def test_uniform_formats_and_overrides(tmp_path):
    s = _run(tmp_path, "model=digits_cnn", "hw=lpa", "quant.w_format=lp<4,*,*,*>", "quant.a_format=lp<2,*,*,*>",
             "hw.rows=8", "hw.cols=8", "hw.dataflow=ws")
    rows = _layers(tmp_path)
    assert {(r["b_a"], r["b_w"], r["P"], r["dataflow"], r["R"]) for r in rows} == {("2", "4", "8.0", "ws", "8")}
    assert s["meta"]["iso_area"] is False and s["meta"]["array"] == [8, 8]


def test_workload_file_input(tmp_path):
    from hwmodel.workload import GemmRecord, records_to_csv

    gemms = tmp_path / "gemms.csv"
    gemms.write_text(records_to_csv([GemmRecord("a", "linear", 64, 64, 64), GemmRecord("b", "matmul", 32, 32, 16, 4, "count")]))
    s = _run(tmp_path / "o", "hw=int8", f"+io.gemms={gemms}", "hw.batch=2")
    assert s["macs"] == 2 * (64 ** 3 + 4 * 32 * 32 * 16)


def test_resnet18_shapes_lpa_vs_baselines_in_band(tmp_path):
    """V8: LPA ratios vs every baseline stay in [0.5x, 8x] (outside means a bookkeeping error)."""
    for profile in ("default28", "ant_compat"):
        s = _run(tmp_path / profile, "model=timm", "model.name=resnet18", "hw=lpa", f"hw/profile={profile}",
                 "quant.w_format=lp<4,*,*,*>", "quant.a_format=lp<4,*,*,*>", "hw.normalise_also=[bitfusion,adafloat,olaccel]")
        assert s["macs"] == 64 * 1_814_073_344
        for base, ratios in s["norm"].items():
            for key in ("speedup", "energy_eff", "perf_per_area"):
                assert 0.5 <= ratios[key] <= 8, (profile, base, key, ratios[key])


@pytest.mark.parametrize("overrides,message", [
    (["hw=int8", "quant.w_format=lp<4,1,2,0>", "quant.a_format=lp<4,1,2,0>"], "cannot execute"),
    (["hw=lpa", "hw.rows=8"], "set both or neither"),
    (["hw=lpa", "hw.dataflow=rs"], "dataflow='rs' is invalid"),
    (["hw=lpa", "quant.config=/nonexistent/q.json"], "does not exist"),
    (["hw=int8", "hw/profile=ant_compat"], "not simulated by profile ant_compat"),
    (["hw=lpa", "hw.accounting=magic"], "hw.accounting='magic' is invalid"),
])
def test_errors_exit_2_with_a_message(tmp_path, capsys, overrides, message):
    assert main(["hwsim", "model=digits_cnn", *overrides, f"out_dir={tmp_path}"]) == 2
    assert message in capsys.readouterr().err


def test_family_mismatch_can_be_allowed(tmp_path):
    s = _run(tmp_path, "model=digits_cnn", "hw=int8", "quant.w_format=lp<4,1,2,0>", "quant.a_format=lp<4,1,2,0>",
             "hw.allow_family_mismatch=true")
    assert s["meta"]["precision_source"] == "uniform"


def test_unknown_design_is_a_hydra_error(tmp_path, capsys):
    assert main(["hwsim", "hw=tpu", f"out_dir={tmp_path}"]) == 2
    assert "tpu" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["digits_cnn", "digits_vit"])
def test_record_names_equal_quantmodel_units(name):
    """§1.4: a qconfig key (a QuantModel unit name) MUST equal the GEMM record name, in the same order."""
    import torch

    from hwmodel.extract import extract_gemms
    from lpq.models.embedded import EMBEDDED_MODELS
    from lpq.quant.model import QuantModel

    qm = QuantModel(EMBEDDED_MODELS[name]().eval(), torch.zeros(1, 1, 8, 8))
    assert [r.name for r in extract_gemms(EMBEDDED_MODELS[name](), (1, 8, 8))] == qm.unit_names
