"""quant.bias_correction through the commands: the search's fitness sees the corrected biases (its best fitness
differs from the uncorrected search and is reproduced by re-scoring the written qconfig with correction on), the
qconfig records it, and `lpq evaluate quant.config=` applies it from that record."""
from __future__ import annotations

import json

from lpq.cli import main

CAL = ["calib.num_samples=64", "calib.batch=32", "calib.subsample=4096"]
RUN = ["search.population=4", "search.generations=1", "budget.w_bits=3", "budget.a_bits=4", "search.format=int"]


def test_bias_correction_in_search_and_evaluate(cnn_ckpt, tmp_path):
    base = ["model=digits_cnn", f"model.checkpoint={cnn_ckpt}", *CAL]
    reports = {}
    for on in (False, True):
        out = tmp_path / f"bc{int(on)}"
        assert main(["search", *base, *RUN, f"quant.bias_correction={str(on).lower()}", f"out_dir={out}"]) == 0
        reports[on] = json.loads((out / "search.json").read_text())
        qc = json.loads((out / "qconfig.json").read_text())
        assert qc.get("bias_correction", "off") == ("weights" if on else "off")
        assert reports[on]["bias_correction"] == ("weights" if on else "off")
    assert reports[True]["digest"] != reports[False]["digest"]
    assert reports[True]["fitness"] != reports[False]["fitness"]
    # evaluate reads the record: the same qconfig evaluated with correction from its own flag
    ev = tmp_path / "eval"
    assert main(["evaluate", *base, f"quant.config={tmp_path / 'bc1' / 'qconfig.json'}", f"out_dir={ev}"]) == 0
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["bias_correction"] == "weights" and metrics["calib_samples"] == 64
    plain = tmp_path / "eval-plain"
    assert main(["evaluate", *base, f"quant.config={tmp_path / 'bc0' / 'qconfig.json'}", f"out_dir={plain}"]) == 0
    assert "bias_correction" not in json.loads((plain / "metrics.json").read_text())


def test_uniform_evaluate_with_bias_correction_changes_predictions(cnn_ckpt, tmp_path):
    base = ["model=digits_cnn", f"model.checkpoint={cnn_ckpt}", *CAL, "quant.w_format=int<3>", "quant.a_format=none"]
    tops = {}
    for on in ("false", "true", "inputs"):
        out = tmp_path / on
        assert main(["evaluate", *base, f"quant.bias_correction={on}", f"out_dir={out}"]) == 0
        tops[on] = (out / "predictions.csv").read_text()
    assert tops["true"] != tops["false"]
