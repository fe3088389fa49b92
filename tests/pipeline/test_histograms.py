"""Weight histograms with the chosen code points (lpq.pipeline.histograms)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lpq.pipeline.histograms import main, plot, spread, weight_layers
from lpq.quant.model import QuantModel
from lpq.quant.qconfig import QConfig


@pytest.mark.parametrize("total,pick,expected", [(7, 4, [0, 2, 4, 6]), (3, 4, [0, 1, 2]), (5, 1, [0]),
                                                 (10, 2, [0, 9]), (0, 4, [])])
def test_spread_keeps_first_and_last(total, pick, expected):
    assert spread(total, pick) == expected


def _tiny():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 3))
    return QuantModel(net, torch.zeros(1, 1, 8, 8))


def test_weight_layers_code_points_match_the_format():
    qm = _tiny()
    names = qm.unit_names
    qc = QConfig.from_json({"schema_version": 1, "layers": {names[0]: {"w": "lp<4,0,2,1.5>", "a": "lp<4,0,2,0>"}}})
    layers = weight_layers(qm, qc)
    assert [n for n, *_ in layers] == names
    name, w, spec, points = layers[0]
    assert spec == "lp<4,0,2,1.5>" and w.size == qm.fp_weight(name).numel()
    from lpq.formats import parse

    expected = np.asarray(parse("lp<4,0,2,1.5>").codebook(), dtype=np.float64)
    np.testing.assert_array_equal(points, expected[np.isfinite(expected)])
    assert len(points) == 15  # 16 codes minus NaR
    assert layers[1][2] is None and layers[1][3] is None  # unlisted layer stays FP32


def test_plot_writes_png(tmp_path):
    qm = _tiny()
    qc = QConfig.from_json({"schema_version": 1, "layers": {n: {"w": "int<4>@2", "a": None} for n in qm.unit_names}})
    out = tmp_path / "h.png"
    plot(weight_layers(qm, qc), "tiny", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp*"))


def test_cli_rejects_missing_qconfig(tmp_path):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "o.png"), "--qconfig", str(tmp_path / "none.json"), "--", "model=digits_cnn"])
    assert e.value.code == 2
    assert not (tmp_path / "o.png").exists()
