"""Prefix reuse (LPQ §8.4, §12): the segmented model run from any boundary equals the full
forward bit for bit, and trie-ordered fitness evaluation with prefix reuse gives exactly the
fitness of full forwards; plus the FP reference level and a hand-computed fitness."""
from __future__ import annotations

import pytest
import torch

from lpq.quant.ptq import uniform_qconfig
from lpq.search.fitness import FitnessEvaluator, FitnessSettings
from lpq.search.objective import infonce, pool
from lpq.search.runner import SegmentedModel, default_taps

from ._util import model_search, quant_stack

MODELS = ["digits_cnn", "digits_vit", "timm_resnet_basic", "timm_resnet_bottleneck", "timm_vit"]


def _digits_batches(n: int = 64, batch: int = 32) -> list[torch.Tensor]:
    from lpq.data.embedded import digits_split

    images = digits_split("calib").images[:n]
    return list(images.split(batch))


def _build(name: str, cnn_ckpt=None):
    """(model, calibration batches) for one of MODELS; timm models are randomly initialised."""
    torch.manual_seed(0)
    if name.startswith("digits"):
        from lpq.models.embedded import EMBEDDED_MODELS

        model = EMBEDDED_MODELS[name]()
        if name == "digits_cnn" and cnn_ckpt is not None:
            model.load_state_dict(torch.load(cnn_ckpt, weights_only=True))
        return model, _digits_batches()
    import timm

    small = dict(channels=(8, 16, 32, 64), stem_width=8, layers=[1, 1, 1, 1])
    spec = {
        "timm_resnet_basic": ("resnet18", small),
        "timm_resnet_bottleneck": ("resnet50", small),
        "timm_vit": ("vit_tiny_patch16_224", dict(img_size=32, patch_size=8, depth=2, embed_dim=48, num_heads=3)),
    }[name]
    model = timm.create_model(spec[0], pretrained=False, num_classes=10, **spec[1])
    gen = torch.Generator().manual_seed(1)
    return model, list(torch.randn(8, 3, 32, 32, generator=gen).split(4))


@pytest.fixture(scope="module")
def stacks(request):
    cache = {}

    def get(name: str):
        if name not in cache:
            ckpt = request.getfixturevalue("cnn_ckpt") if name == "digits_cnn" else None
            model, batches = _build(name, ckpt)
            qm, stats, seg = quant_stack(model, batches)
            cache[name] = (qm, stats, seg, batches)
        return cache[name]

    return get


def _tap_outputs(qm, seg: SegmentedModel, x: torch.Tensor):
    """Output of a full forward of the module and the output of each tap module (hooks)."""
    got = {}
    hooks = [qm.model.get_submodule(t).register_forward_hook(lambda m, i, o, t=t: got.__setitem__(t, o))
             for t in seg.taps]
    try:
        with torch.inference_mode():
            out = qm(x)
    finally:
        for h in hooks:
            h.remove()
    return out, [got[t] for t in seg.taps]


@pytest.mark.parametrize("cut_units", [True, False], ids=["cut-units", "taps-only"])
@pytest.mark.parametrize("name", MODELS)
def test_segmented_run_equals_full_forward_bitwise(name, stacks, cut_units):
    qm, stats, seg, batches = stacks(name)
    if not cut_units:
        seg = SegmentedModel(qm, seg.taps, cut_units=False)
    assert seg.taps == default_taps(qm.model)  # one tap per block (LPQ §4.2)
    if cut_units:  # a cut before every unit (except the first) and after every tap
        assert seg.num_segments >= len(qm.unit_names) >= len(seg.taps)
    else:
        assert seg.num_segments == len(seg.taps) + 1 >= 3
    segs = [seg.unit_segment[u] for u in qm.unit_names]
    assert segs == sorted(segs) and segs[0] == 0 and segs[-1] == seg.num_segments - 1
    if cut_units:
        assert len(set(segs)) == len(segs)  # every unit starts its own segment
    taps_at = sorted(seg.tap_ordinal)
    assert [seg.tap_ordinal[b] for b in taps_at] == list(range(len(seg.taps)))
    qc = uniform_qconfig(qm, stats, "lp<5,*,*,*>", "lp<6,*,*,*>", False)
    x = batches[0]
    outputs = []
    for quantizers in ({}, qc.quantizers()):
        qm.set_quantizers(quantizers)
        repeats = 2 if quantizers else 1
        full, tap_full = _tap_outputs(qm, seg, x)
        outputs.append(full)
        taps, saved = [], {}
        with torch.inference_mode():
            out0 = seg.run(x, 0, on_boundary=lambda b, t, live: (t is not None and taps.append(t),
                                                                  saved.__setitem__(b, live)))
        assert torch.equal(out0, full)
        assert len(taps) == len(seg.taps) and all(torch.equal(a, b) for a, b in zip(taps, tap_full))
        for b in range(1, seg.num_segments):
            for repeat in range(repeats):  # the saved values are not modified by running the suffix
                later = []
                with torch.inference_mode():
                    out = seg.run(None, b, saved[b], on_boundary=lambda bb, t, live: later.append((bb, t)))
                assert torch.equal(out, full), (name, b, repeat)
                assert [bb for bb, _ in later] == list(range(b + 1, seg.num_segments))
                assert all((t is None) == (bb not in seg.tap_ordinal) for bb, t in later)
                assert all(torch.equal(t, tap_full[seg.tap_ordinal[bb]]) for bb, t in later if t is not None)
    assert not torch.equal(outputs[0], outputs[1])  # the quantizers act in the segmented runs


def test_unknown_tap_rejected(stacks):
    qm, _, _, _ = stacks("digits_cnn")
    with pytest.raises(ValueError, match="tap 'nope'"):
        SegmentedModel(qm, ["nope"])


def _individuals(search, children: int = 4, late: int = 4):
    """The initial population, GA children, and single-unit mutants of I_mse in the later
    segments (which share long prefixes with I_mse and with each other)."""
    pop = search.initial_population()
    out = list(pop)
    fit = list(range(len(pop)))
    for _ in range(children):
        a, b = pop[search.tournament(fit)], pop[search.tournament(fit)]
        child = search.crossover(a, b) if search.rng.random() < 0.8 else a
        out.append(search.repair(search.mutate(child)))
    used = sorted({sd.segment for sd in search.sides if sd.segment > 0})  # segments that hold units
    last, before = used[-1], used[-2] if len(used) > 1 else used[-1]
    for k in range(late):
        idx = [i for i, sd in enumerate(search.sides) if sd.segment == (last if k % 2 else before)]
        i = idx[k % len(idx)]
        g = list(pop[1])
        g[i] = search.family.mutate(g[i], search.rng)
        out.append(search.repair(tuple(g)))
    uniq = {search.key(g): g for g in out}
    return list(uniq.values())


@pytest.mark.parametrize("name,family", [("digits_cnn", "lp"), ("digits_cnn", "int"), ("digits_vit", "lp"),
                                         ("timm_resnet_basic", "lp")])
def test_prefix_reuse_fitness_bit_identical(name, family, stacks):
    qm, stats, seg, batches = stacks(name)
    settings = dict(objective="infonce", tau=3.0, lam=1.0, pooling="mean")
    ev_reuse = FitnessEvaluator(qm, seg, batches, FitnessSettings(**settings, prefix_reuse=True))
    ev_full = FitnessEvaluator(qm, seg, batches, FitnessSettings(**settings, prefix_reuse=False))
    search = model_search(qm, stats, seg, ev_reuse, family, population=4, w_bits=4.5, a_bits=5.0)
    inds = _individuals(search)
    assert len(inds) >= 8
    qs = [search.quantizers(g) for g in inds]
    keys = [search.segment_keys(g) for g in inds]
    reuse = ev_reuse.evaluate(qs, keys)
    full = ev_full.evaluate(qs, keys)
    assert reuse == full  # bit-identical fitness and terms
    assert ev_reuse.stats.segments_run < ev_reuse.stats.segments_total  # prefixes were actually shared
    assert ev_full.stats.segments_run == ev_full.stats.segments_total
    # again (from the prefix cache, across calls), one at a time and in reverse order: same values
    assert [ev_reuse.evaluate([q], [k])[0] for q, k in zip(qs[:3], keys[:3])] == reuse[:3]
    assert ev_reuse.evaluate(qs[::-1], keys[::-1]) == reuse[::-1]
    # a fresh evaluator whose prefix cache holds a single boundary output (LRU eviction)
    tiny = FitnessEvaluator(qm, seg, batches, FitnessSettings(**settings, prefix_reuse=True, prefix_cache_mb=1e-6))
    assert tiny.evaluate(qs, keys) == full
    assert len({r["fitness"] for r in reuse}) > 1


def _segment_keys(seg: SegmentedModel, qc) -> tuple:
    per = [[] for _ in range(seg.num_segments)]
    for name, lq in qc.layers.items():
        per[seg.unit_segment[name]].append(f"{name}:{lq.w}:{lq.a}")
    return tuple("|".join(p) for p in per)


def test_fitness_by_hand_and_fp_reference(stacks):
    """F = mean over batches of InfoNCE(logits) + λ · mean over taps of InfoNCE(pooled taps),
    with the FP outputs as V; the FP model scored against itself is the reference level."""
    qm, stats, seg, batches = stacks("digits_cnn")
    lam, tau = 0.7, 3.0
    ev = FitnessEvaluator(qm, seg, batches, FitnessSettings(tau=tau, lam=lam))
    qc = uniform_qconfig(qm, stats, "lp<4,*,*,*>", "lp<4,*,*,*>", False)
    keys = _segment_keys(seg, qc)
    got = ev.evaluate([qc.quantizers()], [keys])[0]

    qm.set_quantizers({})
    fp = [_tap_outputs(qm, seg, x) for x in batches]
    qm.set_quantizers(qc.quantizers())
    g_sum = l_sum = 0.0
    for x, (fp_out, fp_taps) in zip(batches, fp):
        out, taps = _tap_outputs(qm, seg, x)
        g_sum += float(infonce(out, fp_out, tau))
        l_sum += sum(float(infonce(pool(t, "mean"), pool(f, "mean"), tau)) for t, f in zip(taps, fp_taps)) / len(taps)
    nb = len(batches)
    assert got["global"] == pytest.approx(g_sum / nb, rel=1e-12)
    assert got["local"] == pytest.approx(l_sum / nb, rel=1e-12)
    assert got["fitness"] == pytest.approx(g_sum / nb + lam * l_sum / nb, rel=1e-12)

    fp_fit = ev.evaluate([{}], [("fp32",) * seg.num_segments])[0]
    assert fp_fit["fitness"] == pytest.approx(ev.reference["fitness"], rel=1e-12)
    assert ev.reference["global"] == pytest.approx(float(infonce(fp[0][0], fp[0][0], tau) + infonce(fp[1][0], fp[1][0], tau)) / 2, rel=1e-6)
    assert got["fitness"] > ev.reference["fitness"]  # 4-bit quantization moves away from FP

    for objective, lam_used in (("global_only", 0.0), ("mse", 1.0), ("kl", 1.0)):
        ev2 = FitnessEvaluator(qm, seg, batches, FitnessSettings(objective=objective, lam=lam_used))
        r = ev2.evaluate([qc.quantizers()], [keys])[0]
        assert r["local"] == 0.0 and r["fitness"] == r["global"]  # local terms only with InfoNCE
    assert FitnessEvaluator(qm, seg, batches, FitnessSettings(objective="global_only", lam=0.0)) \
        .evaluate([qc.quantizers()], [keys])[0]["global"] == pytest.approx(got["global"], rel=1e-12)


@pytest.mark.parametrize("name,family", [("digits_cnn", "lp"), ("digits_cnn", "int"), ("digits_vit", "lp"),
                                         ("timm_resnet_basic", "lp")])
@pytest.mark.parametrize("per_pass,reuse", [(3, True), (8, True), (4, False)])
def test_batched_individuals_agree_with_one_at_a_time(name, family, per_pass, reuse, stacks):
    """LPQ §8.5: individuals evaluated together as chunks of one batch (search.individuals_per_pass)
    agree with one-at-a-time evaluation within 1e-5 relative (here: on CPU, bit for bit), with
    and without prefix reuse, fresh and from a prefix cache filled by either mode."""
    qm, stats, seg, batches = stacks(name)
    settings = dict(objective="infonce", tau=3.0, lam=1.0, pooling="mean")
    single = FitnessEvaluator(qm, seg, batches, FitnessSettings(**settings, prefix_reuse=reuse))
    grouped = FitnessEvaluator(qm, seg, batches, FitnessSettings(**settings, prefix_reuse=reuse,
                                                                 individuals_per_pass=per_pass))
    search = model_search(qm, stats, seg, single, family, population=4, w_bits=4.5, a_bits=5.0)
    inds = _individuals(search)
    qs = [search.quantizers(g) for g in inds]
    keys = [search.segment_keys(g) for g in inds]
    ref = single.evaluate(qs, keys)
    got = grouped.evaluate(qs, keys)
    for r, g in zip(ref, got):
        for term in ("fitness", "global", "local"):
            assert g[term] == pytest.approx(r[term], rel=1e-5, abs=1e-9), term
    assert got == ref  # CPU: the chunks run exactly the one-at-a-time ops
    if reuse:
        assert grouped.stats.segments_run < grouped.stats.segments_total
        assert grouped.evaluate(qs[::-1], keys[::-1]) == ref[::-1]  # from its own prefix cache
        assert single.evaluate(qs[:2], keys[:2]) == ref[:2]
    else:
        assert grouped.stats.segments_run == grouped.stats.segments_total
    assert any(grouped.batchable)  # some boundaries can start grouped runs
    assert qm._group is None  # group mode is left after every run
