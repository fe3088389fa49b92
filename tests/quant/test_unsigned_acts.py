"""quant.unsigned_acts: never-negative activations get their family's unsigned variant (uniform PTQ and the
search's genes), negative values reaching an unsigned unit at evaluation are counted, and hwsim counts an unsigned
n-bit operand as an n-bit lane of its signed family."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lpq.data.embedded import ArrayDataset
from lpq.formats import parse
from lpq.quant.model import QuantModel
from lpq.quant.ptq import collect_statistics, make_loader, uniform_qconfig
from lpq.quant.quantizer import make_quantizer
from lpq.quant.unsigned_acts import activation_template, is_nonnegative, mode_of, summary


class ReluNet(nn.Module):
    """conv (signed image in) -> ReLU -> conv -> ReLU -> pool -> linear: 1 signed and 2 non-negative inputs."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(x.mean((2, 3)))


def _setup():
    g = torch.Generator().manual_seed(0)
    ds = ArrayDataset(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 5, (16,), generator=g),
                      [f"s/{i}" for i in range(16)])
    qm = QuantModel(ReluNet().eval(), ds.images[:1])
    stats = collect_statistics(qm, make_loader(ds, 8), subsample=4096, seed=0)
    return qm, stats, ds


@pytest.mark.parametrize("a_format,unsigned_name", [("lp<4,*,*,*>", "ulp<4,"), ("int<4>", "uint<4>"),
                                                    ("fp4_e2m1", "ufp<2,2>"), ("posit<4,1>", "uposit<4,1>"),
                                                    ("af<4,2>", "uaf<4,2>"), ("ant<4>", "u")])
def test_uniform_qconfig_makes_non_negative_inputs_unsigned(a_format, unsigned_name):
    qm, stats, _ = _setup()
    assert not is_nonnegative(stats, "c1", "a") and is_nonnegative(stats, "c2", "a") and is_nonnegative(stats, "fc", "a")
    qc = uniform_qconfig(qm, stats, "int<4>", a_format, per_channel=False, unsigned_acts="auto")
    assert not parse(qc.layers["c1"].a).family.startswith("u")  # the signed image keeps a signed format
    for name in ("c2", "fc"):
        spec = qc.layers[name].a
        assert spec.startswith(unsigned_name) and not parse(spec).signed and parse(spec).bits == 4
    off = uniform_qconfig(qm, stats, "int<4>", a_format, per_channel=False, unsigned_acts="off")
    assert all(parse(lq.a).signed for lq in off.layers.values())


def test_unsigned_halves_the_error_of_a_relu_input():
    """At 4 bits the unsigned variant has twice the positive levels: its calibrated MSE on a ReLU output is lower."""
    qm, stats, _ = _setup()
    x = stats[("c2", "a")]
    for fmt in ("lp<4,*,*,*>", "int<4>", "fp4_e2m1"):
        signed = uniform_qconfig(qm, stats, "none", fmt, False, unsigned_acts="off").layers["c2"].a
        unsigned = uniform_qconfig(qm, stats, "none", fmt, False, unsigned_acts="auto").layers["c2"].a
        mse = [float(np.mean((make_quantizer(s)(torch.from_numpy(x)).numpy() - x) ** 2)) for s in (signed, unsigned)]
        assert mse[1] < 0.6 * mse[0], (fmt, signed, unsigned, mse)


def test_negative_values_at_evaluation_are_clamped_and_counted():
    qm, stats, ds = _setup()
    qc = uniform_qconfig(qm, stats, "none", "int<8>", per_channel=False, unsigned_acts="auto")
    qm.set_quantizers(qc.quantizers())
    qm.clamp_counts = {}
    with torch.no_grad():
        qm(ds.images)
    counts = dict(qm.clamp_counts)
    assert set(counts) == {("c2", "a"), ("fc", "a")} and all(n == 0 for n, _ in counts.values())
    # an input driven below zero at evaluation: the format clamps it to 0, the count says how many
    qm.clamp_counts = {}
    with torch.no_grad():  # feed a negative tensor straight into fc's quantizer
        x = -torch.ones(3, 4)
        out = qm._a_q["fc"](x)
        qm._count_negative("fc", "a", x)
    assert torch.equal(out, torch.zeros_like(x))
    assert qm.clamp_counts[("fc", "a")] == (12, 12)
    s = summary({("fc", "a"): (12, 12), ("c2", "a"): (0, 100)})
    assert s == {"unsigned_units": 2, "unsigned_clamped": 12, "unsigned_clamped_fraction": 12 / 112,
                 "unsigned_clamped_worst": {"unit": "fc", "side": "a", "fraction": 1.0}}
    assert summary({}) == {}


def test_modes_and_templates():
    assert mode_of(False) == "off" and mode_of(None) == "off" and mode_of("AUTO") == "auto"
    with pytest.raises(ValueError, match="quant.unsigned_acts='yes' is invalid"):
        mode_of("yes")
    stats = {("u", "a"): np.float32([0.0, 1.0]), ("u", "a:min"): np.float32([0.0]),
             ("v", "a"): np.float32([0.0, 1.0]), ("v", "a:min"): np.float32([-1e-9])}
    assert activation_template("lp<4,*,*,*>", stats, "u", "a", "auto") == "ulp<4,*,*,*>"
    assert activation_template("lp<4,*,*,*>", stats, "v", "a", "auto") == "lp<4,*,*,*>"  # the exact minimum decides
    assert activation_template("lp<4,*,*,*>", stats, "u", "a", "off") == "lp<4,*,*,*>"
    assert activation_template("none", stats, "u", "a", "auto") == "none"


def test_hwsim_counts_an_unsigned_operand_as_an_n_bit_lane():
    from hwmodel.precision import lp_decoded_width
    from lpq.runs.hwsim import spec_operand

    op = spec_operand("ulp<4,1,3,0.5>")
    assert (op.family, op.bits) == ("lp", 4) and op.dec_bits == lp_decoded_width(5, 1, 3)
    assert (spec_operand("ufp<2,2>@1").family, spec_operand("ufp<2,2>@1").bits) == ("fp", 4)
    assert (spec_operand("ulp<4,*,*,*>").family, spec_operand("ulp<4,*,*,*>").bits) == ("lp", 4)
    assert spec_operand("uint<4>").family == "uint"
