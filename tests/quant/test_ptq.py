"""PTQ plumbing: calibration statistics, uniform qconfigs, bit accounting (LPQ §4.3),
top-1/top-5 evaluation and the deterministic loader."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lpq.data.embedded import ArrayDataset
from lpq.formats import parse
from lpq.models.embedded import digits_vit
from lpq.quant.model import QuantModel
from lpq.quant.ptq import average_bits, collect_statistics, evaluate, make_loader, uniform_qconfig
from lpq.quant.qconfig import LayerQ, QConfig
from lpq.quant.quantizer import make_quantizer

from ._util import tiny_cnn


def _dataset(n: int = 20, seed: int = 0, shape=(1, 8, 8)) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn((n, *shape), generator=g)
    labels = torch.randint(0, 5, (n,), generator=g)
    return ArrayDataset(images, labels, [f"s/{i}" for i in range(n)])


def _true_reduce(model: nn.Module, names, ds, reduce, start: float) -> dict[str, float]:
    """reduce (max of |x|, or min of x) of every named layer's input over the dataset, from forward pre-hooks."""
    mods = dict(model.named_modules())
    out = {n: start for n in names}

    def hook(n):
        return lambda m, a: out.__setitem__(n, reduce(out[n], a[0]))

    hs = [mods[n].register_forward_pre_hook(hook(n)) for n in names]
    with torch.no_grad():
        model(ds.images)
    for h in hs:
        h.remove()
    return out


def _true_peaks(model: nn.Module, names, ds) -> dict[str, float]:
    return _true_reduce(model, names, ds, lambda acc, x: max(acc, float(x.abs().max())), 0.0)


def _true_minima(model: nn.Module, names, ds) -> dict[str, float]:
    return _true_reduce(model, names, ds, lambda acc, x: min(acc, float(x.min())), np.inf)


def test_collect_statistics_keys_peaks_and_determinism():
    model = tiny_cnn()
    ds = _dataset(20)
    peaks = _true_peaks(model, ["conv1", "conv2", "fc"], ds)
    qm = QuantModel(model, ds.images[:1])
    loader = make_loader(ds, batch_size=8)
    stats = collect_statistics(qm, loader, subsample=30, seed=0)
    minima = {k: v for k, v in stats.items() if k[1].endswith(":min")}
    stats = {k: v for k, v in stats.items() if k not in minima}
    assert set(stats) == {("conv1", "a"), ("conv2", "a"), ("fc", "a")}
    assert set(minima) == {("conv1", "a:min"), ("conv2", "a:min"), ("fc", "a:min")}
    lows = _true_minima(model, ["conv1", "conv2", "fc"], ds)
    for (name, _), arr in minima.items():  # the exact minimum over every element (quant.unsigned_acts)
        assert arr.shape == (1,) and float(arr[0]) == pytest.approx(lows[name], rel=1e-6)
    for (name, _), arr in stats.items():
        assert arr.dtype == np.float32
        assert float(np.abs(arr).max()) == pytest.approx(peaks[name], rel=1e-6)  # max|x| is exact
        assert arr.size <= len(loader) * (int(np.ceil(30 / len(loader))) + 1)
    again = collect_statistics(qm, loader, subsample=30, seed=0)
    other = collect_statistics(qm, loader, subsample=30, seed=1)
    for k in stats:
        np.testing.assert_array_equal(stats[k], again[k])
    assert any(not np.array_equal(stats[k], other[k]) for k in stats if stats[k].size > 30)


def test_collect_statistics_uses_the_fp_model():
    """Statistics come from the FP model even when quantizers were set before."""
    model = tiny_cnn()
    ds = _dataset(12)
    qm = QuantModel(model, ds.images[:1])
    loader = make_loader(ds, batch_size=4)
    fp = collect_statistics(qm, loader, subsample=10_000, seed=0)
    q = make_quantizer("int<2>@0")
    qm.set_quantizers({n: (q, q) for n in qm.unit_names})
    after = collect_statistics(qm, loader, subsample=10_000, seed=0)
    for k in fp:
        np.testing.assert_array_equal(fp[k], after[k])


def test_collect_statistics_vit_matmul_sides():
    torch.manual_seed(0)
    model = digits_vit().eval()
    ds = _dataset(6)
    qm = QuantModel(model, ds.images[:1])
    stats = collect_statistics(qm, make_loader(ds, 3), subsample=500, seed=0)
    for u in qm.units:
        if u.kind in ("qk", "av"):
            assert (u.name, "a") in stats and (u.name, "w") in stats
        else:
            assert (u.name, "a") in stats and (u.name, "w") not in stats
    assert float(stats[("blocks.0.attn.av", "a:min")][0]) >= 0  # softmax probabilities: an unsigned operand
    probs = stats[("blocks.0.attn.av", "a")]
    assert probs.min() >= 0 and probs.max() <= 1


def test_uniform_qconfig_cnn_and_vit():
    torch.manual_seed(0)
    ds = _dataset(6)
    qm = QuantModel(digits_vit().eval(), ds.images[:1])
    stats = collect_statistics(qm, make_loader(ds, 3), subsample=2000, seed=0)
    qc = uniform_qconfig(qm, stats, "int<4>", "lp<6,*,*,*>", per_channel=False)
    assert list(qc.layers) == qm.unit_names
    for name, lq in qc.layers.items():
        assert "*" not in (lq.w or "") and "*" not in (lq.a or "")
        assert parse(lq.a).bits == 6
        if name.endswith((".qk", ".av")):  # both operands are activations: a_format on both sides
            assert parse(lq.w).bits == 6 and lq.w.startswith("lp<6,")
        else:
            assert lq.w.startswith("int<4>")
    qc_w = uniform_qconfig(qm, stats, "int<8>", "none", per_channel=True)
    assert all(not n.endswith((".qk", ".av")) for n in qc_w.layers)
    for name, lq in qc_w.layers.items():
        assert lq.a is None and lq.w == "int<8>@ch"
        assert len(lq.w_sf) == qm.fp_weight(name).shape[0]
    assert uniform_qconfig(qm, stats, "none", "none", per_channel=False).layers == {}


class ToyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)  # weight 36, input 64 per sample
        self.fc = nn.Linear(144, 10)  # weight 1440, input 144 per sample

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


def test_average_bits_toy_model():
    qm = QuantModel(ToyNet().eval(), torch.randn(1, 1, 8, 8))
    qc = QConfig({"conv": LayerQ("int<4>", "int<8>"), "fc": LayerQ("lp<6,1,3,0>", None)})
    bits = average_bits(qm, qc)
    avg_w = (36 * 4 + 1440 * 6) / (36 + 1440)
    assert bits["avg_w_bits"] == pytest.approx(avg_w)
    assert bits["avg_a_bits"] == pytest.approx(8.0)
    assert bits["compression"] == pytest.approx(32 / avg_w)
    none = average_bits(qm, QConfig({}))
    assert none == {"avg_w_bits": None, "avg_a_bits": None, "compression": None}
    qc2 = QConfig({"conv": LayerQ(None, "int<8>"), "fc": LayerQ(None, "int<4>")})
    assert average_bits(qm, qc2)["avg_a_bits"] == pytest.approx((64 * 8 + 144 * 4) / (64 + 144))


def test_average_bits_attention_sides_count_as_activations():
    torch.manual_seed(0)
    qm = QuantModel(digits_vit().eval(), torch.randn(1, 1, 8, 8))
    qc = QConfig({"blocks.0.attn.qk": LayerQ("int<4>", "int<8>"), "blocks.0.attn.av": LayerQ("int<2>", None)})
    bits = average_bits(qm, qc)
    assert bits["avg_w_bits"] is None
    assert bits["avg_a_bits"] == pytest.approx((816 * 8 + 816 * 4 + 816 * 2) / (816 * 3))


class LookupModel(nn.Module):
    """Returns fixed logits for sample index i (the 'image' is the index)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, idx):
        return self.logits[idx.long()]


def _lookup_data(labels):
    n = len(labels)
    return ArrayDataset(torch.arange(n), torch.tensor(labels), [str(i) for i in range(n)])


def test_evaluate_top1_top5():
    logits = torch.tensor([
        [9, 8, 7, 6, 5, 4, 3], [9, 8, 7, 6, 5, 4, 3], [9, 8, 7, 6, 5, 4, 3], [1, 2, 3, 4, 5, 6, 7],
    ], dtype=torch.float32)
    data = _lookup_data([0, 4, 5, 0])  # top1 hit, top5 hit, miss, miss
    res = evaluate(LookupModel(logits), make_loader(data, batch_size=3))
    assert res["top1"] == 25.0 and res["top5"] == 50.0 and res["num_samples"] == 4
    assert res["eval_seconds"] >= 0
    capped = evaluate(LookupModel(logits), make_loader(data, batch_size=3), max_samples=2)
    assert capped["num_samples"] == 2 and capped["top1"] == 50.0 and capped["top5"] == 100.0


def test_evaluate_fewer_than_five_classes_and_empty():
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 2.0, 1.0]])
    res = evaluate(LookupModel(logits), make_loader(_lookup_data([0, 0]), batch_size=2))
    assert res["top1"] == 50.0 and res["top5"] == 100.0
    with pytest.raises(ValueError, match="empty"):
        evaluate(LookupModel(logits), make_loader(_lookup_data([]), batch_size=2))


def test_make_loader_is_ordered_and_complete():
    ds = _dataset(10)
    batches = list(make_loader(ds, batch_size=4))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in batches]), ds.images)
