"""Fitness of quantization configs on the calibration set (LPQ §4, §8).

The FP reference (logits and pooled tap vectors per batch) is computed once. A generation is
evaluated batch-outer and trie-ordered. The unquantized block outputs at every boundary are kept
in an LRU cache (bytes-bounded, across generations) keyed by the batch and the quantizer strings
of all layers before the boundary, so an individual runs only the suffix after the deepest
prefix already evaluated (its parent's, a sibling's), and the local terms of that prefix are
reused. Results are bit-identical to full forwards."""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from ..quant.model import QuantModel
from ..quant.quantizer import Quantizer
from .objective import infonce, logits_term, pool
from .runner import SegmentedModel

log = logging.getLogger("lpq")

Quantizers = dict[str, tuple[Quantizer | None, Quantizer | None]]


@dataclass
class FitnessSettings:
    objective: str = "infonce"
    tau: float = 3.0
    lam: float = 1.0
    pooling: str = "mean"
    prefix_reuse: bool = True
    prefix_cache_mb: float = 1024.0

    @property
    def uses_local(self) -> bool:
        return self.objective == "infonce" and self.lam != 0


@dataclass
class EvalStats:
    evaluations: int = 0
    segments_run: int = 0
    segments_total: int = 0
    extra: dict = field(default_factory=dict)


class FitnessEvaluator:
    """F(θ) = mean over batches of [global term + λ · mean local InfoNCE over taps]."""

    def __init__(self, qm: QuantModel, seg: SegmentedModel, batches: list[torch.Tensor], settings: FitnessSettings):
        self.qm, self.seg, self.batches, self.s = qm, seg, batches, settings
        self.stats = EvalStats()
        # boundary outputs of evaluated prefixes, across generations (LRU, bytes-bounded)
        self._prefix_cache: OrderedDict = OrderedDict()
        self._cache_bytes = 0
        self.cache_budget = int(settings.prefix_cache_mb * 2**20)
        self.fp_logits: list[torch.Tensor] = []
        self.fp_taps: list[list[torch.Tensor]] = []
        qm.set_quantizers({})
        with torch.inference_mode():
            for x in batches:
                taps: list[torch.Tensor] = []
                logits = seg.run(x, 0, on_boundary=lambda b, t, live: t is not None and taps.append(pool(t, settings.pooling)))
                self.fp_logits.append(logits)
                self.fp_taps.append(taps)
        self.reference = self._reference_level()

    def _lookup(self, b: int, keys: tuple) -> tuple[int, dict | None, list[float]]:
        """Deepest cached boundary whose prefix (segments before it) equals this individual's."""
        for k in range(len(keys) - 1, 0, -1):
            hit = self._prefix_cache.get((b, keys[:k]))
            if hit is not None:
                self._prefix_cache.move_to_end((b, keys[:k]))
                return k, hit[0], list(hit[1])
        return 0, None, []

    def _store(self, b: int, prefix: tuple, live: dict, local_terms: list[float]) -> None:
        key = (b, prefix)
        if key in self._prefix_cache:
            return
        size = sum(v.numel() * v.element_size() for v in live.values() if isinstance(v, torch.Tensor))
        self._prefix_cache[key] = (live, local_terms, size)
        self._cache_bytes += size
        while self._cache_bytes > self.cache_budget and self._prefix_cache:
            _, (_, _, old) = self._prefix_cache.popitem(last=False)
            self._cache_bytes -= old

    def _reference_level(self) -> dict:
        """The FP model scored against itself (LPQ §4.2 reference level)."""
        g = l = 0.0
        for b, logits in enumerate(self.fp_logits):
            g += float(logits_term(self.s.objective, logits, logits, self.s.tau))
            if self.s.uses_local and self.fp_taps[b]:
                l += sum(float(infonce(t, t, self.s.tau)) for t in self.fp_taps[b]) / len(self.fp_taps[b])
        nb = len(self.fp_logits)
        return {"global": g / nb, "local": l / nb, "fitness": (g + self.s.lam * l * self.s.uses_local) / nb}

    def evaluate(self, individuals: list[Quantizers], segment_keys: list[tuple]) -> list[dict]:
        """Fitness terms of each individual (same order as given)."""
        n = len(individuals)
        order = sorted(range(n), key=lambda i: segment_keys[i])  # trie order: neighbours share prefixes
        glob = [0.0] * n
        loc = [0.0] * n
        nseg = self.seg.num_segments
        with torch.inference_mode():
            for b, x in enumerate(self.batches):
                for i in order:
                    keys = segment_keys[i]
                    cp, saved, locals_ = self._lookup(b, keys) if self.s.prefix_reuse else (0, None, [])
                    self.qm.set_quantizers(individuals[i])

                    def on_boundary(bidx: int, tap: torch.Tensor, live: dict, _b=b, _l=locals_, _k=keys) -> None:
                        if tap is not None:  # a tap output: its local term (other cuts only save values)
                            ref = self.fp_taps[_b][self.seg.tap_ordinal[bidx]]
                            _l.append(float(infonce(pool(tap, self.s.pooling), ref, self.s.tau)) if self.s.uses_local else 0.0)
                        if self.s.prefix_reuse:
                            self._store(_b, _k[:bidx], live, list(_l))

                    logits = self.seg.run(x if cp == 0 else None, cp, saved, on_boundary)
                    glob[i] += float(logits_term(self.s.objective, logits, self.fp_logits[b], self.s.tau))
                    if self.s.uses_local and locals_:
                        loc[i] += sum(locals_) / len(locals_)
                    self.stats.segments_run += nseg - cp
                    self.stats.segments_total += nseg
        nb = len(self.batches)
        self.stats.evaluations += n
        out = []
        for i in range(n):
            g, l = glob[i] / nb, loc[i] / nb
            out.append({"fitness": g + (self.s.lam * l if self.s.uses_local else 0.0), "global": g, "local": l})
        return out
