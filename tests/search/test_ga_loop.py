"""The GA loop (LPQ §5.1, §5.3, §4.3 penalty mode, §10) with a stand-in fitness on the toy model:
elitism, the fitness memo, max_evals and patience stops, penalty mode, in-process resume."""
from __future__ import annotations

import zlib
from types import SimpleNamespace

import pytest

from ._util import check_genome, toy_search


class FakeEvaluator:
    """Deterministic pseudo-random fitness of the quantizer strings; records every call."""

    def __init__(self, constant: float | None = None, reference: float = 0.0):
        self.seg = SimpleNamespace(num_segments=3)
        self.reference = {"fitness": reference, "global": reference, "local": 0.0}
        self.constant = constant
        self.seen: list[str] = []

    def evaluate(self, individuals, segment_keys):
        out = []
        for q in individuals:
            key = "|".join(f"{u}:{w.spec if w else None}:{a.spec if a else None}" for u, (w, a) in sorted(q.items()))
            self.seen.append(key)
            f = self.constant if self.constant is not None else 1.0 + zlib.crc32(key.encode()) / 2**32
            out.append({"fitness": f, "global": f, "local": 0.0})
        return out


def _search(ev: FakeEvaluator, **ga):
    s = toy_search("lp", ga.pop("w_bits", 4.5), ga.pop("a_bits", 3.5), **ga)
    s.ev = ev
    return s


def test_loop_elitism_memo_and_history():
    ev = FakeEvaluator()
    s = _search(ev, population=6, generations=6, elites=2, patience=0, max_evals=1000)
    best = s.run()
    assert len(ev.seen) == len(set(ev.seen)) == len(s.memo)  # nothing evaluated twice (memo)
    hist = s.history
    assert [h["generation"] for h in hist] == list(range(7))
    bests = [h["best_fitness"] for h in hist]
    assert bests == sorted(bests, reverse=True)
    assert [h["evaluations"] for h in hist] == sorted(h["evaluations"] for h in hist)
    assert s.memo[s.key(best)]["fitness"] == min(r["fitness"] for r in s.memo.values()) == bests[-1]
    for g in s.population:
        check_genome(s, g)
        w, a = s.avg_bits(g)
        assert w <= 4.5 and a <= 3.5
    for h in hist:
        assert h["avg_w_bits"] <= 4.5 and h["avg_a_bits"] <= 3.5


def test_elites_pass_unchanged():
    ev = FakeEvaluator()
    s = _search(ev, population=6, generations=1, elites=2, patience=0, max_evals=1000)
    s.population = s.initial_population()
    fit = s.fitness_of(s.population)
    ranked = [s.population[j] for j in sorted(range(6), key=lambda j: (fit[j], j))]
    s.run()
    assert s.population[:2] == ranked[:2]


def test_max_evals_stops_the_search():
    ev = FakeEvaluator()
    s = _search(ev, population=6, generations=50, elites=1, patience=0, max_evals=12)
    s.run()
    assert 12 <= len(s.memo) < 12 + 5
    assert s.generation < 50


def test_patience_stops_without_improvement():
    ev = FakeEvaluator(constant=2.0, reference=1.0)
    s = _search(ev, population=4, generations=20, patience=3, max_evals=10**6)
    s.run()
    assert s.generation == 3  # generations 1..3 without improvement, stop before the 4th


def test_penalty_mode_adds_mu_times_excess():
    ev = FakeEvaluator(constant=1.0)
    s = _search(ev, population=6, generations=2, mode="penalty", patience=0, max_evals=1000, w_bits=3.0, a_bits=3.0)
    top = tuple(s.family.with_n(g, 8) for g in s.initial_population()[0])
    g = s.repair(top)
    assert s.avg_bits(g) == (8.0, 8.0)  # no budget repair in penalty mode
    s.run()
    for key, r in s.memo.items():
        assert r["penalty"] >= 0
    [f] = s.fitness_of([g])
    assert f == pytest.approx(1.0 + 10.0 * ((8 - 3) + (8 - 3)))


def test_in_process_resume_equals_uninterrupted(tmp_path):
    full = _search(FakeEvaluator(), population=5, generations=5, patience=0, max_evals=1000, seed=3)
    best_full = full.run(tmp_path / "full.json", digest="d")
    first = _search(FakeEvaluator(), population=5, generations=2, patience=0, max_evals=1000, seed=3)
    first.run(tmp_path / "ckpt.json", digest="d")
    second = _search(FakeEvaluator(), population=5, generations=5, patience=0, max_evals=1000, seed=3)
    best_resumed = second.run(tmp_path / "ckpt.json", resume=True, digest="d")
    assert best_resumed == best_full
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in full.history]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in second.history] == strip
    assert second.memo == full.memo
    # the resumed run evaluated only generations 3..5
    assert len(second.ev.seen) == len(full.memo) - len(first.memo)
    with pytest.raises(ValueError, match="different configuration"):
        _search(FakeEvaluator(), population=5, generations=5, seed=3).run(tmp_path / "ckpt.json", resume=True,
                                                                          digest="other")
