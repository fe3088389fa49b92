"""The paper's LPQ (search=paper; PAPER-RESULTS §2): the objective L_F = L_CO x L_CR^lambda on concatenated pooled
taps and logits, against hand-computed values; the EMQ-style loop (top-2 parents, one block regenerated,
diversity-prompting selection): deterministic, resumable, budget-exact; and the whole preset through `lpq search`."""
from __future__ import annotations

import json
import math

import pytest
import torch

from lpq.cli import main
from lpq.search.objective import concat_rows, infonce

from ._util import check_genome
from .test_ga_loop import FakeEvaluator, _search


def test_concatenated_objective_by_hand():
    """B = 2, one 2-d tap and 2-d logits. Quantized rows q1 = [1,0 | 1,0], q2 = [0,1 | 0,1] (each part normalised);
    FP rows f1 = [1,0 | 0,1], f2 = [0,1 | 1,0]. Every cosine q_i.f_j = 1/2, so each row's InfoNCE is
    logsumexp(s, s) - s = log 2 and L_CO = 2 tau log 2. With q = f: cos(q_i, f_i) = 1, cos(q_i, f_j) = 0,
    L_CO = 2 tau (log(e^(1/tau) + 1) - 1/tau)."""
    tau = 3.0
    q = concat_rows([torch.tensor([[2.0, 0.0], [0.0, 5.0]]), torch.tensor([[7.0, 0.0], [0.0, 0.5]])])
    f = concat_rows([torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 3.0], [4.0, 0.0]])])
    assert torch.allclose(q, torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1]]))
    assert float(infonce(q, f, tau)) == pytest.approx(2 * tau * math.log(2), rel=1e-6)
    assert float(infonce(f, f, tau)) == pytest.approx(2 * tau * (math.log(math.exp(1 / tau) + 1) - 1 / tau), rel=1e-6)


def test_compression_term_multiplies(cnn_ckpt, tmp_path):
    """L_F = L_CO * (avg weight bits / 32)^lambda for every evaluated candidate; lambda = 0 leaves L_CO."""
    base = ["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "calib.num_samples=64", "calib.batch=32",
            "search=paper", "search.population=4", "search.generations=1", "budget.w_bits=4", "budget.a_bits=8"]
    for lam in (0.0, 1.0):
        out = tmp_path / f"lam{lam}"
        assert main([*base, f"search.cr_lambda={lam}", f"out_dir={out}"]) == 0
        rep = json.loads((out / "search.json").read_text())
        t = rep["fitness_terms"]
        assert t["L_CR"] == pytest.approx(rep["avg_w_bits_searched"] / 32)
        assert rep["fitness"] == pytest.approx(t["L_CO"] * t["L_CR"] ** lam)
        assert rep["settings"]["algorithm"] == "paper" and rep["bits"] == [2, 4, 8]
        assert rep["avg_w_bits_searched"] <= 4 + 1e-9 and rep["avg_a_bits_searched"] <= 8 + 1e-9


def _paper(ev, **ga):
    return _search(ev, algorithm="paper", **ga)


def test_paper_loop_parents_children_and_budget():
    ev = FakeEvaluator()
    s = _paper(ev, population=6, generations=8, diversity=3, patience=0, max_evals=1000)
    s.run()
    assert len(s.population) == 6 + 2 * 8  # C_N and the best diverse child join every iteration
    assert len(ev.seen) == len(set(ev.seen)) <= 6 + 8 * (1 + 3)  # 1 + D evaluations per iteration at most
    for g in s.population:
        check_genome(s, g)
        w, a = s.avg_bits(g)
        assert w <= 4.5 and a <= 3.5  # the budget holds exactly (every child repaired)
    bests = [h["best_fitness"] for h in s.history]
    assert bests == sorted(bests, reverse=True)
    assert s.memo[s.key(s.best())]["fitness"] == min(r["fitness"] for r in s.memo.values())
    assert len(s.blocks()) == 3 and sorted(i for b in s.blocks() for i in b) == s.searchable


def test_paper_loop_is_deterministic_and_resumes(tmp_path):
    full = _paper(FakeEvaluator(), population=5, generations=6, patience=0, max_evals=1000, seed=3)
    best_full = full.run(tmp_path / "full.json", digest="d")
    again = _paper(FakeEvaluator(), population=5, generations=6, patience=0, max_evals=1000, seed=3)
    assert again.run(digest="d") == best_full and again.population == full.population
    first = _paper(FakeEvaluator(), population=5, generations=2, patience=0, max_evals=1000, seed=3)
    first.run(tmp_path / "ckpt.json", digest="d")
    second = _paper(FakeEvaluator(), population=5, generations=6, patience=0, max_evals=1000, seed=3)
    assert second.run(tmp_path / "ckpt.json", resume=True, digest="d") == best_full
    assert second.population == full.population and second.memo == full.memo
    assert len(second.ev.seen) == len(full.memo) - len(first.memo)  # only iterations 3..6 were evaluated
    other = _paper(FakeEvaluator(), population=5, generations=6, patience=0, max_evals=1000, seed=4)
    other.run(digest="d")
    assert other.population != full.population


def test_paper_loop_respects_max_evals():
    ev = FakeEvaluator()
    s = _paper(ev, population=5, generations=100, diversity=4, patience=0, max_evals=30)
    s.run()
    assert 30 <= len(s.memo) < 30 + 5


def test_bad_algorithm_is_named(cnn_ckpt, tmp_path, capsys):
    assert main(["search", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "search.algorithm=emq",
                 f"out_dir={tmp_path}"]) == 2
    assert "search.algorithm='emq' is invalid: need ga" in capsys.readouterr().err
