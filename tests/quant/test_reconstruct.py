"""Learned rounding on any code book (lpq.quant.reconstruct): hardened weights are codes of the unit's format for
every family (per tensor and per channel) and idempotent; zero iterations give round-to-nearest exactly (LP's
log-domain rounding included); reconstruction never raises a block's calibration error and lowers it here; it is
deterministic with a seed and a killed run resumes to identical weights; `lpq evaluate quant.reconstruct=` writes,
records and reuses rounding.pt; quant.pin_first_last."""
from __future__ import annotations

import json

import pytest
import torch

from lpq.cli import main
from lpq.data.embedded import digits_split
from lpq.models.embedded import digits_cnn, digits_vit
from lpq.quant.calibrate import resolve
from lpq.quant.ptq import uniform_qconfig
from lpq.quant.quantizer import make_quantizer
from lpq.quant.reconstruct import (LearnedRounding, ReconSettings, Reconstructor, SoftRounding, code_values,
                                   neighbours, with_rounding)
from lpq.runs import activation_statistics, calibration_batches, prepare
from lpq.search.runner import default_taps

FORMATS = ["lp<4,*,*,*>", "lp<3,*,*,*,underflow=flush>", "int<4>", "fp4_e2m1", "posit<5,1>", "af<5,2>", "lns<5,2>",
           "ant<4>", "flint<4>", "pot<4>", "ulp<4,*,*,*>", "uint<4>"]


def _weight(seed=0, shape=(6, 3, 3, 3)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * torch.logspace(-1, 0.5, shape[0])[:, None, None, None]


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
def test_hardened_weights_are_codes_and_rtn_at_zero_iterations(fmt, per_channel):
    w = _weight()
    if fmt.startswith("u"):
        w = w.abs()
    r = resolve(fmt, w.numpy(), per_channel=per_channel)
    q = make_quantizer(r.spec, r.channel_sf)
    lo, hi, rtn = neighbours(q, w)
    assert torch.equal(rtn, q(w)) and bool((lo <= hi).all())
    soft = SoftRounding(w, q)
    assert torch.equal(soft.hard(), q(w))  # zero iterations: the format's own round-to-nearest, bit for bit
    with torch.no_grad():
        soft.v.copy_(torch.randn(soft.v.shape, generator=torch.Generator().manual_seed(1)) * 3)
    hard = soft.hard()
    assert torch.equal(q(hard), hard)  # every hardened weight is a code: re-quantizing changes nothing
    codes = code_values(q, w.shape[0])
    rows = hard.reshape(w.shape[0], -1) if per_channel else hard.reshape(1, -1)
    for row, book in zip(rows, codes.expand(rows.shape[0], -1)):
        assert bool(torch.isin(row, book).all())
    assert bool(((hard == lo) | (hard == hi)).all())  # one of the two neighbours


@pytest.fixture(scope="module")
def prepared(cnn_ckpt):
    module = digits_cnn().eval()
    module.load_state_dict(torch.load(cnn_ckpt))
    calib = digits_split("calib")
    batches = calibration_batches(torch.utils.data.Subset(calib, range(128)), batch=32)
    qm = prepare(module, batches[0][:1])
    stats = activation_statistics(qm, batches)
    return qm, batches, stats


def _run(prepared, fmt, mode="brecq", iters=150, seed=0, ckpt=None, progress=None):
    qm, batches, stats = prepared
    qc = uniform_qconfig(qm, stats, fmt, fmt, per_channel=False)
    rec = Reconstructor(qm, qc.quantizers(), batches, ReconSettings(mode=mode, iters=iters, seed=seed),
                        default_taps(qm.model), ckpt=ckpt, key={"fmt": fmt, "mode": mode})
    return rec, rec.run(progress=progress), qc


@pytest.mark.parametrize("fmt,mode", [("int<3>", "brecq"), ("lp<4,*,*,*>", "adaround"), ("fp4_e2m1", "qdrop")])
def test_reconstruction_lowers_block_errors(prepared, fmt, mode):
    rec, hardened, qc = _run(prepared, fmt, mode)
    assert rec.report and all(b["error_learned"] <= b["error_rtn"] for b in rec.report)
    assert sum(b["error_learned"] < b["error_rtn"] for b in rec.report) >= len(rec.report) - 1
    quantizers = qc.quantizers()
    for name, w in hardened.items():
        q = quantizers[name][0]
        assert torch.equal(q(w), w)
    applied = with_rounding(quantizers, hardened)
    assert all(isinstance(applied[n][0], LearnedRounding) and applied[n][0].spec == quantizers[n][0].spec
               for n in hardened)


def test_vit_blocks_are_transformer_blocks():
    """On a ViT the reconstruction blocks are the transformer blocks (LPQ's taps); the attention matmuls carry no
    weights; every block's calibration error ends at or below round-to-nearest; hardened weights are codes."""
    torch.manual_seed(0)
    module = digits_vit().eval()
    batches = calibration_batches(torch.utils.data.Subset(digits_split("calib"), range(32)), batch=16)
    qm = prepare(module, batches[0][:1])
    qc = uniform_qconfig(qm, activation_statistics(qm, batches), "lp<4,*,*,*>", "lp<6,*,*,*>", per_channel=False)
    taps = default_taps(qm.model)
    assert taps == ["blocks.0", "blocks.1", "blocks.2"]
    rec = Reconstructor(qm, qc.quantizers(), batches, ReconSettings(mode="brecq", iters=20), taps, key={})
    hardened = rec.run()
    assert [sorted({n.split(".")[1] for n in b["layers"] if n.startswith("blocks.")}) for b in rec.report] == \
        [["0"], ["1"], ["2"], []]
    assert rec.report[-1]["layers"] == ["head"] and "patch_embed.proj" in rec.report[0]["layers"]
    assert all(b["error_learned"] <= b["error_rtn"] for b in rec.report)
    quantizers = qc.quantizers()
    assert all(torch.equal(quantizers[n][0](w), w) for n, w in hardened.items())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_reconstruction_on_cuda(prepared):
    """The same reconstruction on CUDA: hardened weights are codes of the unit's format (checked on the CPU) and no
    block ends above round-to-nearest."""
    qm, batches, stats = prepared
    qc = uniform_qconfig(qm, stats, "lp<4,*,*,*>", "lp<4,*,*,*>", per_channel=False)
    qm.model.cuda()
    try:
        rec = Reconstructor(qm, qc.quantizers(), [b.cuda() for b in batches], ReconSettings(mode="brecq", iters=40),
                            default_taps(qm.model), key={})
        hardened = rec.run()
    finally:
        qm.model.cpu()
    quantizers = qc.quantizers()
    assert all(torch.equal(quantizers[n][0](w.cpu()), w.cpu()) for n, w in hardened.items())
    assert all(b["error_learned"] <= b["error_rtn"] for b in rec.report)


def test_deterministic_and_resumes_after_a_kill(prepared, tmp_path):
    _, full, _ = _run(prepared, "int<3>", iters=60, seed=3)
    _, again, _ = _run(prepared, "int<3>", iters=60, seed=3)
    assert all(torch.equal(full[n], again[n]) for n in full)
    _, other, _ = _run(prepared, "int<3>", iters=60, seed=4)
    assert any(not torch.equal(full[n], other[n]) for n in full)

    class Killed(Exception):
        pass

    def kill_after_two(done, total):
        if done == 2:
            raise Killed

    ckpt = tmp_path / "blocks.pt"
    with pytest.raises(Killed):
        _run(prepared, "int<3>", iters=60, seed=3, ckpt=ckpt, progress=kill_after_two)
    assert ckpt.is_file()
    rec, resumed, _ = _run(prepared, "int<3>", iters=60, seed=3, ckpt=ckpt)
    assert all(torch.equal(full[n], resumed[n]) for n in full)


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="quant.reconstruct='round' is invalid"):
        ReconSettings(mode="round")
    with pytest.raises(ValueError, match="quant.recon.warmup=2"):
        ReconSettings(mode="brecq", warmup=2)


def test_evaluate_writes_records_and_reuses_rounding(cnn_ckpt, tmp_path):
    base = ["evaluate", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "calib.num_samples=64",
            "quant.w_format=int<3>", "quant.a_format=int<4>", "quant.reconstruct=brecq", "quant.recon.iters=40",
            "quant.recon.samples=64"]
    out = tmp_path / "rc"
    assert main([*base, f"out_dir={out}"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    qc = json.loads((out / "qconfig.json").read_text())
    assert m["reconstruct"] == "brecq" and qc["reconstruct"] == "brecq" and len(qc["reconstructed"]) == 7
    assert (out / "rounding.pt").is_file() and not (out / ".recon").exists()
    stamp = (out / "rounding.pt").stat().st_mtime_ns
    assert main([*base, f"out_dir={out}"]) == 0  # the same settings: rounding.pt is reused, not learned again
    assert (out / "rounding.pt").stat().st_mtime_ns == stamp
    assert json.loads((out / "metrics.json").read_text())["top1"] == m["top1"]
    other = tmp_path / "other"
    assert main([*base, f"quant.rounding={out / 'rounding.pt'}", f"out_dir={other}"]) == 0
    assert json.loads((other / "metrics.json").read_text())["top1"] == m["top1"]
    assert main([*base, "quant.recon.iters=41", f"quant.rounding={out / 'rounding.pt'}",
                 f"out_dir={tmp_path / 'mismatch'}"]) == 2
    assert main([*base, "quant.bias_correction=true", f"out_dir={tmp_path / 'both'}"]) == 2


def test_too_many_reconstruction_samples_names_the_key(cnn_ckpt, tmp_path, capsys):
    """More reconstruction images than the calibration pool holds: the error names quant.recon.samples, not calib."""
    assert main(["evaluate", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "calib.num_samples=64",
                 "quant.w_format=int<3>", "quant.a_format=int<4>", "quant.reconstruct=brecq", "quant.recon.iters=1",
                 "quant.recon.samples=100000", f"out_dir={tmp_path / 'big'}"]) == 2
    err = capsys.readouterr().err
    assert "quant.recon.samples=100000 is invalid" in err and "calib.num_samples" not in err
    assert not (tmp_path / "big" / "metrics.json").exists()


def test_reconstruct_command_then_evaluate_reuses_it(cnn_ckpt, tmp_path):
    """`lpq reconstruct` (the workflow's reconstruct stage) writes rounding.pt + reconstruct.json; `lpq evaluate
    quant.rounding=` applies exactly that rounding (same top-1 as learning it inside evaluate), learns nothing."""
    common = ["model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "calib.num_samples=64", "quant.w_format=int<3>",
              "quant.a_format=int<4>", "quant.reconstruct=adaround", "quant.recon.iters=30", "quant.recon.samples=64"]
    rec = tmp_path / "rec"
    assert main(["reconstruct", *common, f"out_dir={rec}"]) == 0
    summary = json.loads((rec / "reconstruct.json").read_text())
    assert summary["reconstruct"] == "adaround" and len(summary["reconstructed"]) == 7
    assert len(summary["recon_blocks"]) >= 1 and not (rec / ".recon").exists()
    ev = tmp_path / "ev"
    assert main(["evaluate", *common, f"quant.rounding={rec / 'rounding.pt'}", f"out_dir={ev}"]) == 0
    assert not (ev / "rounding.pt").exists()  # reused from the reconstruct step, not learned again
    inline = tmp_path / "inline"
    assert main(["evaluate", *common, f"out_dir={inline}"]) == 0
    top1 = [json.loads((d / "metrics.json").read_text())["top1"] for d in (ev, inline)]
    assert top1[0] == top1[1]
    assert main(["reconstruct", *common[:-3], f"out_dir={tmp_path / 'none'}"]) == 2  # quant.reconstruct=none
    fp32 = tmp_path / "fp32"  # quant.reconstruct reaches an FP32 evaluation through global overrides: no work
    assert main(["evaluate", *common[:2], "calib.num_samples=64", *common[-3:], "eval.max_samples=32",
                 f"out_dir={fp32}"]) == 0
    assert not (fp32 / "rounding.pt").exists() and "reconstruct" not in json.loads((fp32 / "metrics.json").read_text())
    assert not (tmp_path / "none" / "reconstruct.json").exists()


@pytest.mark.parametrize("unsigned", ["off", "auto"])
def test_pin_first_last_uniform(cnn_ckpt, tmp_path, unsigned):
    """First and last layers at 8 bits in the same family; with unsigned activations a pinned ReLU input gets the
    8-bit unsigned variant (fp8_e4m3 -> ufp<4,4>), the image input stays signed."""
    out = tmp_path / "pin"
    assert main(["evaluate", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "calib.num_samples=64",
                 "quant.w_format=lp<4,*,*,*>", "quant.a_format=fp4_e2m1", "quant.pin_first_last=true",
                 f"quant.unsigned_acts={unsigned}", f"out_dir={out}"]) == 0
    layers = list(json.loads((out / "qconfig.json").read_text())["layers"].values())
    a8, a4 = ("fp8_e4m3", "fp4_e2m1") if unsigned == "off" else ("ufp<4,4>", "ufp<2,2>")
    assert layers[0]["w"].startswith("lp<8,") and layers[-1]["w"].startswith("lp<8,")
    assert layers[0]["a"].startswith("fp8_e4m3") and layers[-1]["a"].startswith(a8)
    assert all(e["w"].startswith("lp<4,") and e["a"].startswith(a4) for e in layers[1:-1])


def test_reconstructing_a_bias_corrected_qconfig_replaces_its_correction(cnn_ckpt, tmp_path):
    """A qconfig searched (or evaluated) with bias correction records it; quant.reconstruct on that qconfig learns
    the rounding instead (labelled), without it the recorded correction is applied again; asking for both stays an
    error."""
    common = ["model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "calib.num_samples=64"]
    bc = tmp_path / "bc"
    assert main(["evaluate", *common, "quant.w_format=int<3>", "quant.a_format=int<4>", "quant.bias_correction=true",
                 f"out_dir={bc}"]) == 0
    assert json.loads((bc / "qconfig.json").read_text())["bias_correction"] == "weights"
    again = tmp_path / "again"
    assert main(["evaluate", *common, f"quant.config={bc / 'qconfig.json'}", f"out_dir={again}"]) == 0
    m = json.loads((again / "metrics.json").read_text())
    assert m["bias_correction"] == "weights" and m["top1"] == json.loads((bc / "metrics.json").read_text())["top1"]
    rec = tmp_path / "rec"
    recon = ["quant.reconstruct=brecq", "quant.recon.iters=20", "quant.recon.samples=64"]
    assert main(["evaluate", *common, f"quant.config={bc / 'qconfig.json'}", *recon, f"out_dir={rec}"]) == 0
    m = json.loads((rec / "metrics.json").read_text())
    assert m["reconstruct"] == "brecq" and m["bias_correction_replaced_by"] == "brecq" and "bias_correction" not in m
    assert "bias_correction" not in json.loads((rec / "qconfig.json").read_text())  # what was applied, only
    assert main(["evaluate", *common, f"quant.config={bc / 'qconfig.json'}", *recon, "quant.bias_correction=true",
                 f"out_dir={tmp_path / 'both'}"]) == 2
