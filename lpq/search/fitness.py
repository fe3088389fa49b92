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
from .objective import concat_rows, infonce, logits_term, pool
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
    individuals_per_pass: int = 1  # LPQ §8.5: individuals run together as chunks of one batch
    cr_lambda: float = 0.0  # paper objective: L_F = L_CO * L_CR^cr_lambda (PAPER-RESULTS §2)

    @property
    def uses_local(self) -> bool:
        return self.objective == "infonce" and self.lam != 0

    @property
    def concatenates(self) -> bool:
        """The paper objective: one InfoNCE over the concatenated pooled taps and logits (L_CO)."""
        return self.objective == "paper"


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
        if int(settings.individuals_per_pass) < 1:
            raise ValueError(f"search.individuals_per_pass={settings.individuals_per_pass} is invalid: need >= 1")
        qm.set_quantizers({})
        # boundary number -> True when every value live there is a tensor whose first axis is
        # the batch: only there can grouped runs (individuals_per_pass > 1) start, stop and cache
        self.batchable = [False] * seg.num_segments
        with torch.inference_mode():
            for x in batches:
                taps: list[torch.Tensor] = []

                def on_fp_boundary(b, t, live, _n=len(x), _taps=taps):
                    if t is not None:
                        _taps.append(pool(t, settings.pooling))
                    self.batchable[b] = all(nd.op != "get_attr" and isinstance(v, torch.Tensor) and v.dim() > 0
                                            and v.shape[0] == _n for nd, v in live.items())

                logits = seg.run(x, 0, on_boundary=on_fp_boundary)
                self.fp_logits.append(logits)
                self.fp_taps.append(taps)
        self.reference = self._reference_level()

    def _lookup(self, b: int, keys: tuple, batchable_only: bool = False) -> tuple[int, dict | None, list[float]]:
        """Deepest cached boundary whose prefix (segments before it) equals this individual's."""
        for k in range(len(keys) - 1, 0, -1):
            if batchable_only and not self.batchable[k]:
                continue
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
            if self.s.concatenates:
                fp = concat_rows(self.fp_taps[b] + [logits])
                g += float(infonce(fp, fp, self.s.tau))
                continue
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
        k = int(self.s.individuals_per_pass)
        with torch.inference_mode():
            for b, x in enumerate(self.batches):
                if k > 1:
                    for j in range(0, n, k):
                        self._run_wave(b, x, order[j:j + k], individuals, segment_keys, glob, loc)
                    continue
                for i in order:
                    keys = segment_keys[i]
                    cp, saved, locals_ = self._lookup(b, keys) if self.s.prefix_reuse else (0, None, [])
                    self.qm.set_quantizers(individuals[i])

                    def on_boundary(bidx: int, tap: torch.Tensor, live: dict, _b=b, _l=locals_, _k=keys) -> None:
                        if tap is not None:  # a tap output: its local term (other cuts only save values)
                            _l.append(self._local_term(_b, bidx, pool(tap, self.s.pooling)))
                        if self.s.prefix_reuse:
                            self._store(_b, _k[:bidx], live, list(_l))

                    logits = self.seg.run(x if cp == 0 else None, cp, saved, on_boundary)
                    self._accumulate(b, i, logits, locals_, glob, loc)
                    self.stats.segments_run += nseg - cp
                    self.stats.segments_total += nseg
        nb = len(self.batches)
        self.stats.evaluations += n
        out = []
        for i in range(n):
            g, l = glob[i] / nb, loc[i] / nb
            out.append({"fitness": g + (self.s.lam * l if self.s.uses_local else 0.0), "global": g, "local": l})
        return out

    def _run_wave(self, b: int, x: torch.Tensor, wave: list[int], individuals: list[Quantizers],
                  segment_keys: list[tuple], glob: list[float], loc: list[float]) -> None:
        """Batched individuals (LPQ §8.5) on calibration batch b: the wave's individuals advance
        together from boundary to boundary (batchable ones only, `self.batchable`); at each step
        every distinct prefix that needs computing is one chunk of a single grouped run, its
        input the parent's output (computed in this wave or found in the prefix cache). Each
        prefix is computed once, as in the one-at-a-time trie walk; chunks run the same
        per-layer ops and shapes, so the terms agree with one-at-a-time evaluation."""
        nseg = self.seg.num_segments
        reuse = self.s.prefix_reuse
        stops = [k for k in range(1, nseg) if self.batchable[k]] + [nseg] if reuse else [nseg]
        state = {i: self._lookup(b, segment_keys[i], batchable_only=True) if reuse else (0, None, []) for i in wave}
        level = min(pos for pos, _, _ in state.values())
        while level < nseg:
            nxt = min(s for s in stops if s > level)
            nodes: dict[tuple, list] = {}  # output prefix -> [representative, input live, locals, members]
            for i in wave:
                pos, live, locs = state[i]
                if pos != level:
                    continue
                out = segment_keys[i][:nxt] if nxt < nseg else (i,)
                if out in nodes:
                    nodes[out][3].append(i)
                else:
                    nodes[out] = [i, live, list(locs), [i]]
            reps = list(nodes.values())
            m = len(reps)
            if m:
                self._run_group(b, x, level, nxt, reps, individuals, segment_keys, state, glob, loc)
                self.stats.segments_run += m * (nxt - level)
            level = nxt
        self.stats.segments_total += nseg * len(wave)

    def _run_group(self, b, x, level, nxt, reps, individuals, segment_keys, state, glob, loc) -> None:
        """One grouped run of the chunks `reps` from boundary `level` to `nxt` (nseg: the output)."""
        nseg = self.seg.num_segments
        m = len(reps)
        reuse = self.s.prefix_reuse
        captured: dict = {}

        def on_boundary(bidx: int, tap: torch.Tensor, live: dict) -> None:
            if tap is not None:
                for j, chunk in enumerate(pool(tap, self.s.pooling).chunk(m, 0)):
                    reps[j][2].append(self._local_term(b, bidx, chunk))
            if reuse and self.batchable[bidx]:
                parts = {nd: v.chunk(m, 0) for nd, v in live.items()}
                for j, rep in enumerate(reps):
                    chunk_live = {nd: p[j] for nd, p in parts.items()}
                    self._store(b, segment_keys[rep[0]][:bidx], chunk_live, list(rep[2]))
                    if bidx == nxt:
                        captured[j] = chunk_live

        self.qm.set_group([individuals[rep[0]] for rep in reps])
        try:
            if level == 0:
                out = self.seg.run(torch.cat([x] * m, 0), 0, None, on_boundary, stop=nxt if nxt < nseg else None)
            else:
                saved = {nd: torch.cat([rep[1][nd] for rep in reps], 0) for nd in reps[0][1]}
                out = self.seg.run(None, level, saved, on_boundary, stop=nxt if nxt < nseg else None)
        finally:
            self.qm.set_group(None)
        if nxt < nseg:
            for j, rep in enumerate(reps):
                for i in rep[3]:
                    state[i] = (nxt, captured[j], list(rep[2]))
            return
        for rep, logits in zip(reps, out.chunk(m, 0)):
            self._accumulate(b, rep[0], logits, rep[2], glob, loc)

    def _local_term(self, b: int, bidx: int, pooled: torch.Tensor):
        """Local InfoNCE of the pooled tap output at boundary bidx against the FP reference (0 when unused); the
        paper objective keeps the pooled tensor itself, for the concatenation at the output."""
        if self.s.concatenates:
            return pooled
        if not self.s.uses_local:
            return 0.0
        return float(infonce(pooled, self.fp_taps[b][self.seg.tap_ordinal[bidx]], self.s.tau))

    def _accumulate(self, b: int, i: int, logits: torch.Tensor, local_terms: list[float], glob: list[float],
                    loc: list[float]) -> None:
        """Add batch b's global term and mean local term of individual i."""
        if self.s.concatenates:  # L_CO: InfoNCE of [pooled taps..., logits] against the FP concatenation
            fp = concat_rows(self.fp_taps[b] + [self.fp_logits[b]])
            glob[i] += float(infonce(concat_rows(list(local_terms) + [logits]), fp, self.s.tau))
            return
        glob[i] += float(logits_term(self.s.objective, logits, self.fp_logits[b], self.s.tau))
        if self.s.uses_local and local_terms:
            loc[i] += sum(local_terms) / len(local_terms)
