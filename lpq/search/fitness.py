"""Fitness of quantization configs on the calibration set (LPQ §4, §8).

The FP reference (logits and pooled tap vectors per batch) is computed once. A generation is
evaluated batch-outer and trie-ordered: individuals sorted by their per-segment keys share the
model prefix with their predecessor, so only the suffix after the first changed segment runs;
the local terms of shared segments are reused. Results are bit-identical to full forwards."""
from __future__ import annotations

import logging
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
        self.fp_logits: list[torch.Tensor] = []
        self.fp_taps: list[list[torch.Tensor]] = []
        qm.set_quantizers({})
        with torch.inference_mode():
            for x in batches:
                taps: list[torch.Tensor] = []
                logits = seg.run(x, 0, on_boundary=lambda b, t, live: taps.append(pool(t, settings.pooling)))
                self.fp_logits.append(logits)
                self.fp_taps.append(taps)
        self.reference = self._reference_level()

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
        order = sorted(range(n), key=lambda i: segment_keys[i])
        glob = [0.0] * n
        loc = [0.0] * n
        nseg = self.seg.num_segments
        with torch.inference_mode():
            for b, x in enumerate(self.batches):
                stack: list[tuple[dict, float]] = []
                prev = None
                for i in order:
                    keys = segment_keys[i]
                    cp = 0
                    if prev is not None and self.s.prefix_reuse:
                        while cp < len(stack) and keys[cp] == prev[cp]:
                            cp += 1
                    del stack[cp:]
                    self.qm.set_quantizers(individuals[i])
                    locals_ = [term for _, term in stack]

                    def on_boundary(bidx: int, tap: torch.Tensor, live: dict, _b=b, _l=locals_) -> None:
                        term = float(infonce(pool(tap, self.s.pooling), self.fp_taps[_b][bidx - 1], self.s.tau)) if self.s.uses_local else 0.0
                        stack.append((live, term))
                        _l.append(term)

                    logits = self.seg.run(x if cp == 0 else None, cp, stack[cp - 1][0] if cp else None, on_boundary)
                    glob[i] += float(logits_term(self.s.objective, logits, self.fp_logits[b], self.s.tau))
                    if self.s.uses_local and locals_:
                        loc[i] += sum(locals_) / len(locals_)
                    self.stats.segments_run += nseg - cp
                    self.stats.segments_total += nseg
                    prev = keys
        nb = len(self.batches)
        self.stats.evaluations += n
        out = []
        for i in range(n):
            g, l = glob[i] / nb, loc[i] / nb
            out.append({"fitness": g + (self.s.lam * l if self.s.uses_local else 0.0), "global": g, "local": l})
        return out
