"""Reconstruction PTQ for any number format: learned rounding on the format's own code book (quant.reconstruct).

Round-to-nearest is not the best choice of code per weight. AdaRound (Nagel et al. 2020) learns, on calibration
data, whether each weight goes to the code below or above it so that a layer's output matches the FP layer; BRECQ
(Li et al. 2021) does it per block (a residual or transformer block's output is the target); QDrop (Wei et al.
2022) also quantizes activations during reconstruction and drops that quantization at random (p = 0.5) so the
rounding does not over-fit the calibration activations. Toolkits do this for integer grids; here the two
neighbouring codes of every weight come from the unit's own quantizer (after its per-tensor or per-channel scale),
so LP, FP, posit, AdaptivFloat, LNS, ANT and INT all get it alike:

- neighbours: w's code q(w) and the next code on w's other side in the code book (the same code at the ends);
- soft weight: lo + h(V)(hi - lo), h(V) = clip(sigmoid(V)(zeta - gamma) + gamma, 0, 1), zeta = 1.1, gamma = -0.1
  (the rectified sigmoid), V initialised so that h = the weight's position between its codes, moved past 1/2 on the
  side the format itself rounds to (so zero iterations harden to round-to-nearest exactly, LP's log-domain
  rounding included);
- loss: ||block_q(x) - block_fp(x)||^2 (summed over channels, averaged over samples and positions) +
  reg_weight * sum(1 - |2h - 1|^beta), beta annealed from beta_start to beta_end after the first `warmup` share of
  the iterations (no regulariser before); Adam on V;
- hardening: hi where h >= 1/2, else lo: the result is exactly a code of the unit's format (re-quantizing it gives
  it back). A block whose hardened rounding has a larger calibration output error than round-to-nearest keeps
  round-to-nearest (reported as `kept_rtn`), so reconstruction never makes a block worse on the calibration set.

Blocks: `brecq` and `qdrop` reconstruct the segments between LPQ's taps (residual / transformer blocks; the stem
and the head join their neighbours), `adaround` one layer at a time (cuts before every quantized unit), with FP
activations. The block's input is the quantized model's (earlier blocks already hardened), its target the FP
model's output for the FP input. Inputs and targets live in a byte-bounded store that spills to disk. Each block
uses its own seeded generator, and a finished block is checkpointed, so a killed reconstruction restarts at the
block it was in and ends with identical weights.
"""
from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..pipeline import atomic
from ..pipeline.progress import progress as progress_of
from .model import MatmulOperands, QuantModel
from .quantizer import Quantizer

log = logging.getLogger("lpq")

MODES = ("none", "adaround", "brecq", "qdrop")
ZETA, GAMMA = 1.1, -0.1


@dataclass
class ReconSettings:
    """quant.reconstruct and quant.recon.* (defaults: the published AdaRound / BRECQ / QDrop settings)."""

    mode: str = "none"
    iters: int = 20000  # Adam steps per block (BRECQ, QDrop: 20k)
    lr: float = 1e-3  # Adam learning rate of V (AdaRound)
    batch: int = 32  # calibration images per step (BRECQ: 32)
    samples: int = 1024  # calibration images (BRECQ, QDrop: 1024)
    reg_weight: float = 0.01  # weight of the rounding regulariser (BRECQ: 0.01)
    beta_start: float = 20.0  # annealing of the regulariser's beta (AdaRound: 20 -> 2)
    beta_end: float = 2.0
    warmup: float = 0.2  # share of the iterations without the regulariser (AdaRound, BRECQ: 0.2)
    drop_prob: float = 0.5  # qdrop: probability of keeping an activation unquantized (QDrop: 0.5)
    seed: int = 0
    store_mb: float = 1024.0  # block inputs / targets kept in memory up to this, then on disk

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"quant.reconstruct={self.mode!r} is invalid: need one of {', '.join(MODES)}")
        checks = {"iters": self.iters >= 0, "lr": self.lr > 0, "batch": self.batch >= 1, "samples": self.samples >= 1,
                  "reg_weight": self.reg_weight >= 0, "beta_start": self.beta_start > 0, "beta_end": self.beta_end > 0,
                  "warmup": 0 <= self.warmup <= 1, "drop_prob": 0 <= self.drop_prob <= 1, "store_mb": self.store_mb >= 0}
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"quant.recon.{key}={getattr(self, key)!r} is invalid (iters >= 0, lr > 0, batch >= 1, "
                                 f"samples >= 1, reg_weight >= 0, beta > 0, 0 <= warmup <= 1, 0 <= drop_prob <= 1)")

    @property
    def acts_in_loop(self) -> bool:
        return self.mode in ("brecq", "qdrop")


# ---- neighbouring codes and the soft rounding --------------------------------------------------------------------

def code_values(q: Quantizer, rows: int) -> torch.Tensor:
    """[rows or 1, M] sorted float32 values of q's code book in the tensor's domain (per channel: each row scaled by
    its channel's scale), each exactly an output of q."""
    fmt = q.fmt
    book = np.unique(fmt.codebook())
    if q.channel_sf is None:
        return q(torch.from_numpy(book.astype(np.float32))[None, :]).unique(dim=1).sort(dim=1).values
    scale = torch.from_numpy(np.exp2(-np.asarray(q.channel_sf, np.float64)).astype(np.float32))
    grid = (torch.from_numpy(book.astype(np.float32))[None, :] * scale[:, None]).contiguous()
    return q(grid).sort(dim=1).values


def neighbours(q: Quantizer, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lo, hi, rtn): for every weight, the codes of q's code book below and above it (equal at the ends of the
    book) and the code q itself gives it (one of the two)."""
    w = w.detach().float()
    rows = w.shape[0] if q.channel_sf is not None else 1
    codes = code_values(q, rows)
    flat = w.reshape(w.shape[0], -1) if q.channel_sf is not None else w.reshape(1, -1)
    rtn = q(w).reshape(flat.shape)
    book = codes.expand(flat.shape[0], -1).contiguous()
    idx = torch.searchsorted(book, rtn.contiguous())
    idx = idx.clamp(max=book.shape[1] - 1)
    if not torch.equal(torch.gather(book, 1, idx), rtn):
        raise AssertionError(f"{q.spec}: round-to-nearest gave a value outside the code book")
    up = rtn >= flat  # the code is at or above w: the other neighbour is below
    other = torch.where(up, idx - 1, idx + 1).clamp(0, book.shape[1] - 1)
    other_v = torch.gather(book, 1, other)
    lo = torch.where(up, other_v, rtn)
    hi = torch.where(up, rtn, other_v)
    shape = w.shape
    return lo.reshape(shape), hi.reshape(shape), rtn.reshape(shape)


def rectified_sigmoid(v: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


class SoftRounding(nn.Module):
    """The learned up/down choice of every weight of one layer between its two neighbouring codes."""

    def __init__(self, w: torch.Tensor, q: Quantizer):
        super().__init__()
        lo, hi, rtn = neighbours(q, w)
        self.register_buffer("lo", lo)
        self.register_buffer("hi", hi)
        gap = hi - lo
        pos = torch.where(gap > 0, (w.detach().float() - lo) / torch.where(gap > 0, gap, torch.ones_like(gap)),
                          torch.zeros_like(gap))
        up = (rtn == hi) & (gap > 0)  # where the format itself rounds: hardening at 0 iterations gives rtn
        pos = torch.where(up, pos.clamp(0.5 + 1e-3, 1.0), pos.clamp(0.0, 0.5 - 1e-3))
        ratio = ((pos - GAMMA) / (ZETA - GAMMA)).clamp(1e-6, 1 - 1e-6)
        self.v = nn.Parameter(torch.log(ratio / (1 - ratio)))

    def soft(self) -> torch.Tensor:
        return self.lo + rectified_sigmoid(self.v) * (self.hi - self.lo)

    def hard(self) -> torch.Tensor:
        return torch.where(rectified_sigmoid(self.v) >= 0.5, self.hi, self.lo).detach()

    def regulariser(self, beta: float) -> torch.Tensor:
        return (1 - (2 * rectified_sigmoid(self.v) - 1).abs().pow(beta)).sum()


@dataclass(frozen=True, eq=False)
class LearnedRounding(Quantizer):
    """A weight quantizer that returns the learned (hardened) codes of one layer's FP weight: same spec, format and
    scales as the unit's quantizer, so bit accounting, qconfig and the hardware model read it unchanged."""

    weights: torch.Tensor | None = None
    digest: str = ""

    def _key(self):
        return super()._key() + (self.digest,)

    def __eq__(self, other) -> bool:
        return isinstance(other, LearnedRounding) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape) != tuple(self.weights.shape):
            raise ValueError(f"{self.spec}: learned rounding is for a weight of shape {tuple(self.weights.shape)}, "
                             f"got {tuple(x.shape)}")
        return self.weights.to(device=x.device, dtype=x.dtype)


def tensor_digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()[:16]


def with_rounding(quantizers: dict, hardened: dict[str, torch.Tensor]) -> dict:
    """The quantizers with every reconstructed layer's weight quantizer replaced by its learned rounding."""
    out = dict(quantizers)
    for name, w in hardened.items():
        wq, aq = out[name]
        out[name] = (LearnedRounding(wq.spec, wq.fmt, wq.channel_sf, w, tensor_digest(w)), aq)
    return out


# ---- storage of block inputs and targets ----------------------------------------------------------------------------

class ByteStore:
    """A list of tensor dicts kept in memory up to `budget` bytes, the rest saved to a temporary folder."""

    def __init__(self, budget_bytes: int):
        self.budget = int(budget_bytes)
        self.used = 0
        self.items: list = []
        self._dir: tempfile.TemporaryDirectory | None = None

    def append(self, item: dict) -> None:
        item = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in item.items()}
        size = sum(v.numel() * v.element_size() for v in item.values() if isinstance(v, torch.Tensor))
        if self.used + size <= self.budget:
            self.items.append(item)
            self.used += size
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="lpq-recon-")
        path = Path(self._dir.name) / f"{len(self.items)}.pt"
        torch.save(item, path)
        self.items.append(path)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """A copy: models may modify their inputs in place (ReLU(inplace=True), `out += identity`)."""
        item = self.items[i]
        if isinstance(item, Path):
            return torch.load(item, weights_only=True)
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in item.items()}

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


# ---- the reconstruction --------------------------------------------------------------------------------------------

def _ste(x: torch.Tensor, q: Quantizer | None) -> torch.Tensor:
    """q(x) forward, identity backward (straight-through)."""
    return x if q is None else x + (q(x.detach()) - x).detach()


class Reconstructor:
    """Learns the rounding of every quantized weight of `qm` under `quantizers`, block by block."""

    def __init__(self, qm: QuantModel, quantizers: dict, images: list[torch.Tensor], settings: ReconSettings,
                 taps: list[str], ckpt: Path | None = None, key: dict | None = None):
        from ..search.runner import SegmentedModel

        if settings.mode == "none":
            raise ValueError("quant.reconstruct=none: nothing to reconstruct")
        self.qm, self.q, self.s = qm, quantizers, settings
        self.images = images
        self.seg = SegmentedModel(qm, taps if settings.mode != "adaround" else [], cut_units=settings.mode == "adaround"
                                  or not taps)
        self.layers = {u.name for u in qm.units if u.kind in ("conv", "linear")}
        self.trainable = {n for n in self.layers if quantizers.get(n, (None, None))[0] is not None}
        self.ckpt, self.key = ckpt, dict(key or {})
        self.hardened: dict[str, torch.Tensor] = {}
        self.report: list[dict] = []
        self.node_by_name = {n.name: n for n in self.seg.nodes}
        self._rtn_cache: dict[str, torch.Tensor] = {}

    # the forward of one module under reconstruction
    def _call(self, soft: dict, mode: str, gen: torch.Generator | None) -> Callable:
        def call(target: str, mod: nn.Module, args, kwargs):
            if isinstance(mod, MatmulOperands):
                wq, aq = self.q.get(mod.unit_name, (None, None))
                a, w = args
                return self._act(a, aq, mode, gen), self._act(w, wq, mode, gen)
            if target in self.layers:
                wq, aq = self.q.get(target, (None, None))
                x = self._act(args[0], aq, mode, gen)
                if mode == "fp" or wq is None:
                    weight = self.qm.fp_weight(target)
                elif target in soft:
                    weight = soft[target].soft()
                elif target in self.hardened:
                    weight = self.hardened[target]
                else:
                    weight = self._rtn(target)
                bias = mod.bias
                if isinstance(mod, nn.Conv2d):
                    return mod._conv_forward(x, weight, bias)
                return F.linear(x, weight, bias)
            return mod(*args, **kwargs)

        return call

    def _rtn(self, name: str) -> torch.Tensor:
        hit = self._rtn_cache.get(name)
        if hit is None:
            hit = self._rtn_cache[name] = self.q[name][0](self.qm.fp_weight(name))
        return hit

    def _act(self, x: torch.Tensor, q: Quantizer | None, mode: str, gen: torch.Generator | None) -> torch.Tensor:
        if mode == "fp" or q is None or (mode == "train" and not self.s.acts_in_loop):
            return x
        y = _ste(x, q)
        if mode == "train" and self.s.mode == "qdrop" and self.s.drop_prob > 0:
            keep = torch.rand(x.shape, generator=gen, device="cpu").to(x.device) < self.s.drop_prob
            y = torch.where(keep, x, y)
        return y

    def _segment(self, k: int, live: dict, call: Callable) -> dict:
        """Run segment k from its input values to the next boundary's live values (the output for the last)."""
        nseg = self.seg.num_segments
        out: dict = {}

        def grab(b, tap, values):
            out.update({n.name: v for n, v in values.items()})

        saved = {self.node_by_name[n]: v for n, v in live.items() if n != "__input__"}
        res = self.seg.run(live.get("__input__"), k, saved if k else None, grab, stop=k + 1 if k + 1 < nseg else None,
                           module_call=call)
        return {"__output__": res} if k + 1 >= nseg else out

    @staticmethod
    def _loss(pred: dict, target: dict) -> torch.Tensor:
        total = 0.0
        for name, t in target.items():
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                continue  # shapes and other values the next block needs: nothing to match
            d = (pred[name] - t).float()
            total = total + (d.pow(2).sum(1).mean() if d.dim() > 1 else d.pow(2).mean())
        return total

    def _error(self, inputs: ByteStore, targets: ByteStore, k: int, call: Callable) -> float:
        with torch.no_grad():
            return float(np.mean([float(self._loss(self._segment(k, inputs[j], call), targets[j]))
                                  for j in range(len(inputs))]))

    def run(self, progress: Callable | None = None) -> dict[str, torch.Tensor]:
        """Reconstruct every block in order; returns {layer: hardened weight}."""
        qm, s = self.qm, self.s
        qm.set_quantizers({})  # FP weights in the layers; quantization happens in `_call`
        budget = int(s.store_mb * 2**20 / 2)
        done = self._load_checkpoint()
        q_in, fp_in = ByteStore(budget), ByteStore(budget)
        for x in self.images:
            q_in.append({"__input__": x})
            fp_in.append({"__input__": x})
        nseg = self.seg.num_segments
        seg_layers = {k: sorted(n for n in self.trainable if self.seg.unit_segment[n] == k) for k in range(nseg)}
        try:
            for k in range(nseg):
                start = time.perf_counter()
                fp_out, q_next = ByteStore(budget), ByteStore(budget)
                fp_call = self._call({}, "fp", None)
                with torch.no_grad():
                    for j in range(len(fp_in)):
                        fp_out.append(self._segment(k, fp_in[j], fp_call))
                layers = seg_layers[k]
                if layers and k >= done:
                    rec = self._reconstruct(k, layers, q_in, fp_out)
                    rec["seconds"] = round(time.perf_counter() - start, 2)
                    self.report.append(rec)
                    self._save_checkpoint(k + 1)
                    log.info("reconstruction block %d/%d (%s): output error %.6g -> %.6g, %d%% of weights moved off "
                             "round-to-nearest, %.1f s", k + 1, nseg, ", ".join(layers), rec["error_rtn"],
                             rec["error_learned"], round(100 * rec["flipped"]), rec["seconds"])
                if progress is not None:
                    progress(k + 1, nseg)
                q_call = self._call({}, "quant", None)
                with torch.no_grad():
                    if k + 1 < nseg:
                        for j in range(len(q_in)):
                            q_next.append(self._segment(k, q_in[j], q_call))
                q_in.close()
                fp_in.close()
                q_in, fp_in = q_next, fp_out
        finally:
            q_in.close()
            fp_in.close()
        return dict(self.hardened)

    def _reconstruct(self, k: int, layers: list[str], q_in: ByteStore, fp_out: ByteStore) -> dict:
        s = self.s
        soft = {n: SoftRounding(self.qm.fp_weight(n), self.q[n][0]) for n in layers}
        rtn_call = self._call({}, "quant", None)
        err_rtn = self._error(q_in, fp_out, k, rtn_call)
        gen = torch.Generator().manual_seed(int(s.seed) * 1_000_003 + k)
        params = [p.v for p in soft.values()]
        opt = torch.optim.Adam(params, lr=s.lr)
        warm = int(s.warmup * s.iters)
        train_call = self._call(soft, "train", gen)
        with torch.enable_grad():
            desc = f"reconstruction block {k + 1}/{self.seg.num_segments}"
            for it in progress_of(range(int(s.iters)), desc, unit="step"):  # a bar on a terminal, else log lines
                j = int(torch.randint(len(q_in), (1,), generator=gen))
                pred = self._segment(k, q_in[j], train_call)
                loss = self._loss(pred, fp_out[j])
                if it >= warm and s.reg_weight > 0:
                    frac = (it - warm) / max(1, s.iters - warm)
                    beta = s.beta_end + (s.beta_start - s.beta_end) * (1 - frac)
                    loss = loss + s.reg_weight * sum(p.regulariser(beta) for p in soft.values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        flipped = total = 0
        for n, p in soft.items():
            hard = p.hard()
            rtn = self._rtn(n)
            flipped += int((hard != rtn).sum())
            total += hard.numel()
            self.hardened[n] = hard
        err = self._error(q_in, fp_out, k, rtn_call)
        kept = err > err_rtn  # never worse than round-to-nearest on the calibration set: keep RTN for this block
        if kept:
            for n in layers:
                self.hardened[n] = self._rtn(n)
            flipped, err = 0, err_rtn
        return {"block": k, "layers": layers, "error_rtn": err_rtn, "error_learned": err,
                "flipped": flipped / max(1, total), "kept_rtn": bool(kept)}

    # ---- checkpoint: finished blocks ----------------------------------------------------------------------------
    def _save_checkpoint(self, blocks_done: int) -> None:
        if self.ckpt is None:
            return
        self.ckpt.parent.mkdir(parents=True, exist_ok=True)
        atomic.torch_save(self.ckpt, {"key": self.key, "blocks_done": blocks_done, "hardened": self.hardened,
                                      "report": self.report})

    def _load_checkpoint(self) -> int:
        if self.ckpt is None or not self.ckpt.is_file():
            return 0
        state = torch.load(self.ckpt, weights_only=True)
        if state.get("key") != self.key:
            log.warning("reconstruction checkpoint %s is for another model, qconfig or settings: starting over",
                        self.ckpt)
            return 0
        self.hardened = dict(state["hardened"])
        self.report = list(state["report"])
        log.info("reconstruction: %d blocks restored from %s", state["blocks_done"], self.ckpt)
        return int(state["blocks_done"])


def rounding_key(qm: QuantModel, quantizers: dict, settings: ReconSettings, calib_ids: list[str]) -> dict:
    """What a learned rounding depends on: weights, quantizers, settings and calibration images."""
    from .calib_cache import weights_digest

    specs = {n: (wq.spec if wq else None, None if wq is None or wq.channel_sf is None else
                 hashlib.sha256(np.asarray(wq.channel_sf).tobytes()).hexdigest()[:16], aq.spec if aq else None)
             for n, (wq, aq) in sorted(quantizers.items())}
    return {"weights": weights_digest(qm), "quantizers": hashlib.sha256(repr(specs).encode()).hexdigest()[:16],
            "settings": {k: v for k, v in asdict(settings).items() if k != "store_mb"},
            "calib": hashlib.sha256("\n".join(calib_ids).encode()).hexdigest()[:16]}


def save_rounding(path: Path, key: dict, hardened: dict[str, torch.Tensor], report: list[dict]) -> None:
    atomic.torch_save(path, {"key": key, "hardened": hardened, "report": report})


def load_rounding(path: Path, key: dict) -> tuple[dict[str, torch.Tensor], list[dict]] | None:
    """The learned rounding saved at `path` if it was made for `key`, else None."""
    if not Path(path).is_file():
        return None
    state = torch.load(path, weights_only=True)
    if state.get("key") != key:
        return None
    return dict(state["hardened"]), list(state.get("report", []))
