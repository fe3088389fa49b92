"""Workload extraction and file forms (HWMODEL §1, §2.6, §9 V7)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hwmodel.extract import extract_gemms, extract_workload
from hwmodel.workload import (GemmRecord, from_scalesim_conv_topology, from_scalesim_gemm_topology,
                              read_gemms_csv, records_to_csv, to_scalesim_gemm_topology, total_macs)


def _timm(name: str, **kw) -> nn.Module:
    import timm

    with torch.device("meta"):
        return timm.create_model(name, pretrained=False, **kw)


@pytest.fixture(scope="module")
def resnet18():
    return extract_gemms(_timm("resnet18"), (3, 224, 224))


@pytest.fixture(scope="module")
def vit_b16():
    return extract_gemms(_timm("vit_base_patch16_224"), (3, 224, 224))


def _by_name(records):
    return {r.name: r for r in records}


def test_resnet18_anchors(resnet18):
    assert len(resnet18) == 21 and total_macs(resnet18) == 1_814_073_344
    ops = [r.op for r in resnet18]
    assert ops.count("conv") == 20 and ops[-1] == "linear"
    d = _by_name(resnet18)
    assert (d["conv1"].M, d["conv1"].N, d["conv1"].K) == (12544, 64, 147)
    assert (d["layer1.0.conv1"].M, d["layer1.0.conv1"].N, d["layer1.0.conv1"].K) == (3136, 64, 576)
    assert (d["layer4.1.conv2"].M, d["layer4.1.conv2"].N, d["layer4.1.conv2"].K) == (49, 512, 4608)
    assert (d["fc"].M, d["fc"].N, d["fc"].K) == (1, 1000, 512)
    assert sum(1 for r in resnet18 if r.name.endswith("downsample.0")) == 3
    g = d["conv1"].conv
    assert (g.H, g.W, g.C_in, g.KH, g.KW, g.stride, g.pad, g.OH, g.OW, g.groups) == (224, 224, 3, 7, 7, 2, 3, 112, 112, 1)
    assert d["conv1"].u_a == 224 * 224 * 3  # unpadded input


def test_vit_b16_anchors(vit_b16):
    assert len(vit_b16) == 74 and total_macs(vit_b16) == 17_563_828_224
    d = _by_name(vit_b16)
    qkv, qk, av = d["blocks.0.attn.qkv"], d["blocks.0.attn.qk"], d["blocks.0.attn.av"]
    assert (qkv.M, qkv.N, qkv.K, qkv.count) == (197, 2304, 768, 1)
    assert (qk.op, qk.M, qk.N, qk.K, qk.count, qk.batch_axis) == ("attn_qk", 197, 197, 64, 12, "count")
    assert (av.op, av.M, av.N, av.K, av.count, av.batch_axis) == ("attn_av", 197, 64, 197, 12, "count")
    assert vit_b16[0].name == "patch_embed.proj" and (vit_b16[-1].name, vit_b16[-1].M) == ("head", 1)
    per_block = [r.name.split(".")[-1] for r in vit_b16 if r.name.startswith("blocks.3.")]
    assert per_block == ["qkv", "qk", "av", "proj", "fc1", "fc2"]


@pytest.mark.parametrize("name", ["resnet18", "vit_base_patch16_224", "mobilenetv2_100"])
def test_batch_two_equals_scaled_batch_one(name):
    model = _timm(name, num_classes=10)
    one = extract_gemms(model, (3, 64, 64) if "vit" not in name else (3, 224, 224), batch=1)
    two = extract_gemms(model, (3, 64, 64) if "vit" not in name else (3, 224, 224), batch=2)
    assert [r.at_batch(2) for r in one] == two


def test_depthwise_count_is_channels():
    recs = extract_gemms(_timm("mobilenetv2_100"), (3, 224, 224))
    dw = _by_name(recs)["blocks.1.0.conv_dw"]
    assert (dw.count, dw.N, dw.K, dw.conv.groups) == (96, 1, 9, 96)


def test_explicit_attention_matmuls_give_the_same_records():
    fused = _timm("vit_tiny_patch16_224")
    explicit = _timm("vit_tiny_patch16_224")
    for m in explicit.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = False
    assert extract_gemms(fused, (3, 224, 224)) == extract_gemms(explicit, (3, 224, 224))


class _Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.conv = nn.Conv1d(4, 6, 3, groups=2)

    def forward(self, x):
        y = self.fc(self.fc(x))
        z = torch.einsum("bij,bkj->bik", y, y)
        w = self.conv(y[:, :4, :])
        return z, w, torch.bmm(y, y.transpose(1, 2)), y @ self.fc.weight


def test_repeated_modules_einsum_bmm_conv1d():
    recs = extract_gemms(_Twice(), (5, 8))
    assert [(r.name, r.op, r.M, r.N, r.K, r.count, r.batch_axis) for r in recs] == [
        ("fc", "linear", 5, 8, 8, 1, "M"),
        ("fc#2", "linear", 5, 8, 8, 1, "M"),
        ("", "matmul", 5, 5, 8, 1, "count"),  # einsum with a batch letter
        ("conv", "conv", 6, 3, 6, 2, "M"),  # conv1d: OL = 6, N = 6/2, K = (4/2)*3
        (".qk", "attn_qk", 5, 5, 8, 1, "count"),  # first parameter-free matmul of the (root) module
        ("", "matmul", 5, 8, 8, 1, "M"),  # a matmul with a parameter folds batch into M
    ]
    wl = extract_workload(_Twice(), (5, 8))
    assert wl.device == "meta"


def test_not_gemms_are_tallied():
    wl = extract_workload(_timm("resnet18"), (3, 224, 224))
    assert set(wl.excluded) >= {"activation", "pooling", "residual_add"}
    assert wl.excluded["residual_add"][0] == 8


def test_gemms_csv_round_trip(tmp_path, resnet18):
    path = tmp_path / "gemms.csv"
    path.write_text(records_to_csv(resnet18))
    assert read_gemms_csv(path) == resnet18


def test_scalesim_export_import_round_trip(resnet18):
    back = from_scalesim_gemm_topology(to_scalesim_gemm_topology(resnet18))
    assert [(r.name, r.M, r.N, r.K) for r in back] == [(r.name, r.M, r.N, r.K) for r in resnet18]


def test_scalesim_conv_rows_use_the_ceil_output_rule():
    rec = from_scalesim_conv_topology("name,H,W,R,S,C,N,stride,\nc1, 14, 14, 3, 3, 32, 64, 2,\n")[0]
    assert (rec.conv.OH, rec.M, rec.N, rec.K, rec.u_a) == (7, 49, 64, 288, 14 * 14 * 32)  # PyTorch would give 6


def test_record_validation_names_the_field():
    with pytest.raises(ValueError, match="op="):
        GemmRecord("x", "gemv", 1, 1, 1)
    with pytest.raises(ValueError, match="M="):
        GemmRecord("x", "linear", 0, 1, 1)
    with pytest.raises(ValueError, match="batch"):
        GemmRecord("x", "linear", 1, 1, 1).at_batch(2).at_batch(2)
