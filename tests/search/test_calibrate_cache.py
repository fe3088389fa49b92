"""`lpq calibrate` + `lpq search calib.cache=...` (PIPELINE §3.2 rule calibrate): the cached statistics are the
ones the search would compute, a search reading them gives the same files, and a mismatched cache is refused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lpq.cli import main
from lpq.quant import calib_cache

CAL = ["calib.num_samples=64", "calib.batch=32", "calib.subsample=4096"]
SEARCH = ["search.population=4", "search.generations=2", "budget.w_bits=4", "budget.a_bits=4", "seed=0"]


def _json_without_timing(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in ("wall_s", "seconds")}


@pytest.fixture(scope="module")
def calibrated(cnn_ckpt, tmp_path_factory) -> tuple[list[str], Path]:
    base = ["model=digits_cnn", f"model.checkpoint={cnn_ckpt}", *CAL]
    out = tmp_path_factory.mktemp("calib")
    assert main(["calibrate", *base, f"out_dir={out}"]) == 0
    return base, out


def test_calibrate_writes_cache_and_summary(calibrated):
    _, out = calibrated
    summary = json.loads((out / "calib.json").read_text())
    assert summary["units"] == 7 and summary["key"]["num_samples"] == 64 and summary["key"]["batch"] == 32
    obj = torch.load(out / "calib.pt", weights_only=True)
    assert len(obj["ids"]) == 64 and len(obj["stats"]) == 14  # 7 samples and 7 exact minima ("unit|a:min")
    assert sum(k.endswith("|a:min") for k in obj["stats"]) == 7
    assert all(v["samples"] > 0 for v in summary["statistics"].values())


@pytest.mark.parametrize("fmt,extra", [("lp", []), ("int", []), ("lp", ["search=none"])])
def test_search_with_cache_equals_search_without(calibrated, tmp_path, fmt, extra):
    base, cal = calibrated
    args = [*base, f"search.format={fmt}", *SEARCH, *extra]
    assert main(["search", *args, f"out_dir={tmp_path / 'plain'}"]) == 0
    assert main(["search", *args, f"calib.cache={cal / 'calib.pt'}", f"out_dir={tmp_path / 'cached'}"]) == 0
    assert (tmp_path / "plain/qconfig.json").read_bytes() == (tmp_path / "cached/qconfig.json").read_bytes()
    assert _json_without_timing(tmp_path / "plain/search.json") == _json_without_timing(tmp_path / "cached/search.json")


@pytest.mark.parametrize("change,field", [("calib.seed=1", "calib_ids_sha256"), ("calib.subsample=2048", "subsample"),
                                          ("calib.batch=16", "batch")])
def test_mismatched_cache_is_refused(calibrated, tmp_path, capsys, change, field):
    base, cal = calibrated
    rc = main(["search", *base, change, "search.format=lp", *SEARCH, f"calib.cache={cal / 'calib.pt'}",
               f"out_dir={tmp_path}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "does not match this run" in err and field in err
    assert not (tmp_path / "qconfig.json").exists()


def test_other_weights_are_refused(calibrated, tmp_path, capsys):
    base, cal = calibrated
    from lpq.models.embedded import digits_cnn

    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    torch.save(digits_cnn().state_dict(), other)
    args = [a for a in base if not a.startswith("model.checkpoint=")] + [f"model.checkpoint={other}"]
    rc = main(["search", *args, "search.format=lp", *SEARCH, f"calib.cache={cal / 'calib.pt'}",
               f"out_dir={tmp_path / 'o'}"])
    assert rc == 2 and "weights_sha256" in capsys.readouterr().err


def test_missing_or_foreign_cache(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        calib_cache.load_statistics(tmp_path / "none.pt", {})
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a calibration cache"):
        calib_cache.load_statistics(bad, {})


def test_round_trip_is_exact(tmp_path):
    stats = {("a.b", "a"): np.array([1.5, -2.25, np.float32(1e-7)], dtype=np.float32), ("x|y", "w"): np.zeros(0, np.float32)}
    key = {"schema": 1, "model": "m"}
    calib_cache.save(tmp_path / "c.pt", key, ["i0"], stats)
    back = calib_cache.load_statistics(tmp_path / "c.pt", key)
    assert set(back) == set(stats)
    for k in stats:
        np.testing.assert_array_equal(back[k], stats[k])
