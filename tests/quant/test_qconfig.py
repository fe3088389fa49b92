"""qconfig.json (LPQ §11): versioned schema, save -> load round trip to the same quantizers,
and errors that name the bad file / layer."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lpq.quant.model import QuantModel
from lpq.quant.qconfig import SCHEMA_VERSION, LayerQ, QConfig

from ._util import tiny_cnn


def _sample() -> QConfig:
    return QConfig({
        "layer1.0.conv1": LayerQ("lp<4,1,3,0.5>", "lp<6,0,5,-1.25>"),
        "blocks.0.attn.qk": LayerQ("int<8>@4.5", "int<8>@3"),
        "fc": LayerQ("int<8>@ch", "int<8>@4.5", (3.1, 2.9, -0.25)),
        "head": LayerQ("lp<8,2,5,0>@ch-0.5", None, (1.0, 2.0)),
        "stem": LayerQ(None, "fp8_e4m3"),
    })


def _same_quantizers(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)  # order: test_layers_written_in_execution_order
    for name in a:
        for qa, qb in zip(a[name], b[name]):
            if qa is None or qb is None:
                assert qa is None and qb is None, name
                continue
            assert qa.spec == qb.spec and qa.fmt == qb.fmt, name
            if qa.channel_sf is None:
                assert qb.channel_sf is None
            else:
                np.testing.assert_array_equal(qa.channel_sf, qb.channel_sf)


def test_save_load_round_trip(tmp_path):
    qc = _sample()
    path = tmp_path / "qconfig.json"
    qc.save(path)
    obj = json.loads(path.read_text())
    assert obj["schema_version"] == SCHEMA_VERSION == 1
    assert set(obj["layers"]) == set(qc.layers)
    assert obj["layers"]["fc"] == {"w": "int<8>@ch", "a": "int<8>@4.5", "w_sf": [3.1, 2.9, -0.25]}
    assert obj["layers"]["stem"] == {"w": None, "a": "fp8_e4m3"}
    back = QConfig.load(path)
    assert back.layers == qc.layers
    _same_quantizers(back.quantizers(), qc.quantizers())
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    wq, aq = back.quantizers()["fc"]
    assert torch.equal(wq(x), qc.quantizers()["fc"][0](x))
    assert torch.equal(aq(x), qc.quantizers()["fc"][1](x))


def test_save_is_byte_stable_and_keeps_extra(tmp_path):
    qc = _sample()
    qc.extra = {"model": "toy", "w_format": "lp<4,*,*,*>"}
    qc.save(tmp_path / "a.json")
    QConfig.load(tmp_path / "a.json").save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.json").read_bytes().endswith(b"\n")
    assert QConfig.load(tmp_path / "b.json").extra == {"model": "toy", "w_format": "lp<4,*,*,*>"}


def test_layers_written_in_execution_order(tmp_path):
    """LPQ §11: one entry per quantized layer in execution order (not sorted by name)."""
    order = ["stem.0", "layer1.conv1", "layer2.shortcut.0", "fc", "blocks.0.attn.qk", "aa"]
    qc = QConfig({n: LayerQ("int<8>", None) for n in order})
    qc.save(tmp_path / "q.json")
    assert list(json.loads((tmp_path / "q.json").read_text())["layers"]) == order
    assert list(QConfig.load(tmp_path / "q.json").layers) == order


def test_applied_round_trip_gives_identical_outputs(tmp_path):
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    qc = QConfig({"conv1": LayerQ("int<4>@ch", "lp<6,1,3,0>", (2.0, 3.0, 1.5, 2.5)),
                  "fc": LayerQ("lp<4,1,2,1.5>", "int<8>@5")})
    qm = QuantModel(tiny_cnn(), x[:1])
    qm.set_quantizers(qc.quantizers())
    with torch.no_grad():
        first = qm(x)
    qc.save(tmp_path / "q.json")
    qm2 = QuantModel(tiny_cnn(), x[:1])
    qm2.set_quantizers(QConfig.load(tmp_path / "q.json").quantizers())
    with torch.no_grad():
        assert torch.equal(qm2(x), first)


def _write(tmp_path, obj) -> str:
    p = tmp_path / "q.json"
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


@pytest.mark.parametrize("obj, match", [
    ("{not json", "not valid JSON"),
    ({"schema_version": 1}, "no 'layers' key"),
    ([1, 2], "no 'layers' key"),
    ({"schema_version": 2, "layers": {}}, "schema_version=2"),
    ({"layers": {}}, "schema_version=None"),
    ({"schema_version": 1, "layers": {"fc": {"w": "int<8>", "bits": 8}}}, "layer 'fc'.*keys"),
    ({"schema_version": 1, "layers": {"fc": "int<8>"}}, "layer 'fc'"),
    ({"schema_version": 1, "layers": {"fc": {"w": "lp<8,*,*,*>", "a": None}}}, "layer 'fc' side w is not resolved"),
    ({"schema_version": 1, "layers": {"fc": {"w": None, "a": "lp<8,1,3>"}}}, "qconfig layer 'fc'.*lp<8,1,3>"),
    ({"schema_version": 1, "layers": {"conv": {"w": "int<4>@ch", "a": None}}}, "qconfig layer 'conv'.*w_sf"),
    ({"schema_version": 1, "layers": {"conv": {"w": "foo<4>", "a": None}}}, "qconfig layer 'conv'.*foo"),
])
def test_load_errors_name_file_and_layer(tmp_path, obj, match):
    path = _write(tmp_path, obj)
    with pytest.raises(ValueError, match=match) as err:
        QConfig.load(path)
    assert path in str(err.value) or "qconfig layer" in str(err.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        QConfig.load(tmp_path / "nope.json")


def test_unknown_layer_rejected_when_applied(tmp_path):
    path = _write(tmp_path, {"schema_version": 1, "layers": {"conv1": {"w": "int<8>", "a": None},
                                                              "layer9.conv": {"w": "int<8>", "a": None}}})
    qm = QuantModel(tiny_cnn(), torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="unknown layers.*layer9.conv"):
        qm.set_quantizers(QConfig.load(path).quantizers())


def test_round_trip_quantizers_compare_equal(tmp_path):
    qc = _sample()
    qc.save(tmp_path / "q.json")
    assert QConfig.load(tmp_path / "q.json").quantizers() == qc.quantizers()
