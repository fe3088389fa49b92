"""Fake-quantized execution of a float model (LPQ §1).

`QuantModel` finds every Conv2d and Linear (weights + input activation) and, in ViTs, the two
attention matmuls of timm's `Attention` (`<attn>.qk`: Q·Kᵀ, `<attn>.av`: attention·V; side a =
Q / probabilities, side w = K / V). Weights are quantized once when quantizers are set (the FP32
originals are kept); activations are quantized on the fly by forward pre-hooks. Everything else
(biases, norms, softmax, GELU, residual adds, pooling) stays FP32. The same hooks can observe the
tensors instead, which is how calibration collects statistics.

Bias correction (`set_bias_correction`, after Nagel et al. 2019, "Data-free quantization through weight
equalization and bias correction", §4.2): given the per-input-channel mean E[x] of each layer's FP input on the
calibration set, a quantized weight W_q gets the bias b − (W_q − W)·E[x], so the layer's expected output over the
calibration set is the FP one. It follows the weight quantizer wherever weights are applied (single and group
mode), so a search's fitness sees exactly what evaluation gets.
"""
from __future__ import annotations

import logging
import sys
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .quantizer import Quantizer

log = logging.getLogger("lpq")

Observer = Callable[[str, str, torch.Tensor], None]  # (unit name, side 'w'|'a', tensor)


@dataclass
class Unit:
    """One quantized layer: a conv/linear (weight + input) or an attention matmul."""

    name: str
    kind: str  # "conv" | "linear" | "qk" | "av"
    weight_numel: int = 0  # P_l: weight elements (0 for matmuls)
    act_numel: int = 0  # A_l: activation elements per sample (both operands for matmuls)
    side_numel: dict = field(default_factory=dict)  # elements per sample of each activation side


def _is_timm_attention(mod: nn.Module) -> bool:
    # a timm Attention instance implies timm is imported: never import timm (≈0.4 s) just to check
    attention = sys.modules.get("timm.layers.attention")
    return attention is not None and type(mod) is attention.Attention


def _attention_forward(self, x: torch.Tensor, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
    """timm Attention.forward with explicit (quantizable) matmuls."""
    from timm.layers.attention import maybe_add_mask, resolve_self_attn_mask

    B, N, _ = x.shape
    gate = self.gate(x).sigmoid() if getattr(self, "gate", None) is not None else None
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = self.q_norm(q), self.k_norm(k)
    q = q * self.scale
    q, k = self.lpq_qk(q, k)
    attn = q @ k.transpose(-2, -1)
    attn = maybe_add_mask(attn, resolve_self_attn_mask(N, attn, attn_mask, is_causal))
    attn = self.attn_drop(attn.softmax(dim=-1))
    attn, v = self.lpq_av(attn, v)
    x = (attn @ v).transpose(1, 2).reshape(B, N, self.attn_dim)
    x = self.norm(x)
    if gate is not None:
        x = x * gate
    return self.proj_drop(self.proj(x))


class QuantModel(nn.Module):
    """A float model with switchable fake quantization of its weights and activations."""

    def __init__(self, model: nn.Module, example_input: torch.Tensor, skip: tuple[str, ...] = (),
                 attention_matmuls: bool = True):
        super().__init__()
        self.model = model.eval()
        self.skip = set(skip)
        self._w_q: dict[str, Quantizer | None] = {}
        self._a_q: dict[str, Quantizer | None] = {}
        self._mm_q: dict[str, tuple[Quantizer | None, Quantizer | None]] = {}
        self.observer: Observer | None = None
        self._fp_weights: dict[str, torch.Tensor] = {}
        self._layers: dict[str, nn.Module] = {}
        self._weight_cache: OrderedDict = OrderedDict()
        self._weight_cache_bytes = 0
        self._group: list[dict] | None = None  # group mode: one quantizer set per batch chunk
        self._fp_biases: dict[str, torch.Tensor | None] = {}
        self._input_means: dict[str, torch.Tensor] | None = None  # bias correction off when None
        self._input_samples: dict[str, torch.Tensor] | None = None  # input-aware bias correction when set
        self._bias_cache: dict = {}
        self.equalize_summary: dict | None = None  # set by lpq.runs.steps.prepare(equalize=True)
        # {(unit, side): (negative values, values)} seen by unsigned activation quantizers while a dict (evaluation)
        self.clamp_counts: dict | None = None
        names = {n for n, _ in model.named_modules()}
        unknown = self.skip - names - {n + s for n in names for s in (".qk", ".av")}
        if unknown:
            raise ValueError(f"quant.skip names unknown layers: {sorted(unknown)}")
        units: dict[str, Unit] = {}
        for name, mod in list(model.named_modules()):
            if isinstance(mod, (nn.Conv2d, nn.Linear)) and name not in self.skip:
                units[name] = Unit(name, "conv" if isinstance(mod, nn.Conv2d) else "linear", mod.weight.numel())
                self._layers[name] = mod
                self._fp_weights[name] = mod.weight.detach().clone()
                self._fp_biases[name] = None if mod.bias is None else mod.bias.detach().clone()
                mod.register_forward_pre_hook(self._make_pre_hook(name))
            elif attention_matmuls and _is_timm_attention(mod):
                mod.lpq_qk = MatmulOperands(self, name + ".qk")
                mod.lpq_av = MatmulOperands(self, name + ".av")
                mod.forward = types.MethodType(_attention_forward, mod)
                for suffix in (".qk", ".av"):
                    if name + suffix not in self.skip:
                        units[name + suffix] = Unit(name + suffix, suffix[1:])
        self.units = self._execution_order(units, example_input)
        self._weight_cache_budget = 2 * sum(w.numel() * w.element_size() for w in self._fp_weights.values())

    # ---- hooks ------------------------------------------------------------------------------
    def _make_pre_hook(self, name: str):
        def hook(module, args):
            if self._group is not None:  # group mode: `group_forward` quantizes per chunk
                return None
            x = args[0]
            if self.observer is not None:
                self.observer(name, "a", x)
            q = self._a_q.get(name)
            if q is not None:
                if self.clamp_counts is not None and not q.fmt.signed:
                    self._count_negative(name, "a", x)
                x = q(x)
            return (x,) + tuple(args[1:])

        return hook

    def _matmul_operands(self, name: str, a: torch.Tensor, w: torch.Tensor):
        if name in self.skip:
            return a, w
        if self.observer is not None:
            self.observer(name, "a", a)
            self.observer(name, "w", w)
        if self._group is not None:
            m = len(self._group)
            qs = [g.get(name, (None, None)) for g in self._group]  # (weight side, activation side)
            return _per_chunk(a, m, [q[1] for q in qs]), _per_chunk(w, m, [q[0] for q in qs])
        qa, qw = self._mm_q.get(name, (None, None))
        if self.clamp_counts is not None:
            for side, q, x in (("a", qa, a), ("w", qw, w)):
                if q is not None and not q.fmt.signed:
                    self._count_negative(name, side, x)
        return (qa(a) if qa is not None else a), (qw(w) if qw is not None else w)

    def _count_negative(self, name: str, side: str, x: torch.Tensor) -> None:
        """quant.unsigned_acts: values below zero reaching an unsigned quantizer (clamped to 0 by the format)."""
        neg, total = self.clamp_counts.get((name, side), (0, 0))
        self.clamp_counts[(name, side)] = (neg + int((x < 0).sum()), total + x.numel())

    # ---- structure --------------------------------------------------------------------------
    @torch.no_grad()
    def _execution_order(self, units: dict[str, Unit], example: torch.Tensor) -> list[Unit]:
        order: list[str] = []

        def observe(name: str, side: str, x: torch.Tensor) -> None:
            if name not in order:
                order.append(name)
            unit = units[name]
            unit.side_numel[side] = x[0].numel() if x.dim() > 0 else 1
            unit.act_numel = sum(unit.side_numel.values())

        self.observer = observe
        try:
            self.model(example[:1])
        finally:
            self.observer = None
        missing = [n for n in units if n not in order]
        if missing:
            log.warning("layers never called in a forward pass are not quantized: %s", missing)
        return [units[n] for n in order]

    @property
    def unit_names(self) -> list[str]:
        return [u.name for u in self.units]

    def fp_weight(self, name: str) -> torch.Tensor:
        return self._fp_weights[name]

    # ---- quantizers -------------------------------------------------------------------------
    @torch.no_grad()
    def set_quantizers(self, quantizers: dict[str, tuple[Quantizer | None, Quantizer | None]]) -> None:
        """Set (weight, activation) quantizers per unit name; units not listed run in FP32."""
        self._check_names(quantizers)
        old_w = self._w_q
        self._w_q, self._a_q, self._mm_q = {}, {}, {}
        for unit in self.units:
            wq, aq = quantizers.get(unit.name, (None, None))
            if unit.kind in ("qk", "av"):
                self._mm_q[unit.name] = (aq, wq)
                continue
            layer = self._layers[unit.name]
            if unit.name not in old_w or old_w[unit.name] != wq:  # weights change only when their quantizer does
                layer.weight.copy_(self._quantized_weight(unit.name, wq))
                if not self.bias_correction and self._fp_biases.get(unit.name) is not None:
                    layer.bias.copy_(self._fp_biases[unit.name])
            if self.bias_correction:  # the bias follows wq (and aq, input-aware): cached, cheap
                bias = self.bias_for(unit.name, wq, aq)
                if bias is not None:
                    layer.bias.copy_(bias)
            self._w_q[unit.name], self._a_q[unit.name] = wq, aq

    def set_group(self, quantizer_sets: list[dict] | None) -> None:
        """Group mode (LPQ §8.5, batched individuals): the batch is the concatenation of m equal
        chunks, chunk j quantized with quantizer_sets[j] (same form as `set_quantizers`). Conv
        and linear layers then run through `group_forward` (called by the segmented runner),
        attention operands are quantized per chunk; None leaves group mode. The single-mode
        quantizers and weights are left untouched."""
        for qs in quantizer_sets or ():
            self._check_names(qs)
        self._group = list(quantizer_sets) if quantizer_sets is not None else None

    @property
    def in_group_mode(self) -> bool:
        return self._group is not None

    def _check_names(self, quantizers: dict) -> None:
        unknown = set(quantizers).difference(self.unit_names)
        if unknown:
            raise ValueError(f"quantization config names unknown layers: {sorted(unknown)[:5]}; known: {self.unit_names[:5]}...")

    def group_forward(self, name: str, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One conv/linear layer in group mode: chunk j's input and weight quantized with
        chunk j's quantizers, the same ops and shapes as a single-mode forward."""
        m = len(self._group)
        out = []
        for chunk, qs in zip(x.chunk(m, 0), self._group):
            wq, aq = qs.get(name, (None, None))
            if aq is not None:
                chunk = aq(chunk)
            weight = self._quantized_weight(name, wq)
            bias = self.bias_for(name, wq, aq)
            bias = module.bias if bias is None else bias
            if isinstance(module, nn.Conv2d):
                out.append(module._conv_forward(chunk, weight, bias))
            else:
                out.append(nn.functional.linear(chunk, weight, bias))
        return torch.cat(out, 0)

    def _quantized_weight(self, name: str, wq: Quantizer | None) -> torch.Tensor:
        """The weight of `name` under `wq`, from an LRU cache bounded to twice the FP32 weights
        (LPQ §8.3): searches revisit the same (layer, quantizer) pairs constantly."""
        fp = self._fp_weights[name]
        if wq is None:
            return fp
        key = (name, wq)
        cache = self._weight_cache
        hit = cache.pop(key, None)
        if hit is None:
            hit = wq(fp)
            self._weight_cache_bytes += hit.numel() * hit.element_size()
            while cache and self._weight_cache_bytes > self._weight_cache_budget:
                _, old = cache.popitem(last=False)
                self._weight_cache_bytes -= old.numel() * old.element_size()
        cache[key] = hit
        return hit

    # ---- bias correction ----------------------------------------------------------------------
    @torch.no_grad()
    def set_bias_correction(self, input_means: dict[str, torch.Tensor] | None,
                            input_samples: dict[str, torch.Tensor] | None = None) -> None:
        """Turn bias correction on with the per-input-channel means of each conv/linear's FP input (from
        `lpq.quant.bias_correction.input_channel_stats`), or off with None. With `input_samples` ({layer: [C, S]
        FP input vectors}) the correction is input-aware: it also removes the mean shift the layer's activation
        quantizer causes. Layers without a bias get a zero one. Weights and biases are re-applied at the next
        `set_quantizers`."""
        if input_means is not None:
            unknown = set(input_means) - set(self._layers)
            if unknown:
                raise ValueError(f"bias correction means name unknown layers: {sorted(unknown)[:5]}")
            for name in input_means:
                layer = self._layers[name]
                if layer.bias is None:
                    layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0], dtype=layer.weight.dtype,
                                                          device=layer.weight.device), requires_grad=False)
                    self._fp_biases[name] = layer.bias.detach().clone()
            input_means = {k: v.detach().to(self._layers[k].weight) for k, v in input_means.items()}
            if input_samples is not None:
                input_samples = {k: v.detach().to(self._layers[k].weight) for k, v in input_samples.items()
                                 if k in input_means}
        self._input_means = input_means
        self._input_samples = input_samples if input_means is not None else None
        self._bias_cache.clear()
        for name, layer in self._layers.items():  # back to FP weights and biases; set_quantizers re-applies
            layer.weight.copy_(self._fp_weights[name])
            if self._fp_biases.get(name) is not None:
                layer.bias.copy_(self._fp_biases[name])
        self._w_q = {}

    @property
    def bias_correction(self) -> bool:
        return self._input_means is not None

    def _quantized_input_mean(self, name: str, aq: Quantizer | None) -> torch.Tensor:
        """E[aq(x)] per input channel: the exact FP mean plus the shift aq causes on the stored samples (the
        samples' own mean is subtracted, so aq = identity gives the exact mean back)."""
        mean = self._input_means[name]
        samples = (self._input_samples or {}).get(name)
        if aq is None or samples is None:
            return mean
        return mean + (aq(samples) - samples).mean(1)

    @torch.no_grad()
    def bias_for(self, name: str, wq: Quantizer | None, aq: Quantizer | None = None) -> torch.Tensor | None:
        """The bias `name` runs with under quantizers (wq, aq): the FP bias, corrected when bias correction is on by
        −(W_q·E[x] − W·E[x]) (weights), or −(W_q·E[aq(x)] − W·E[x]) (input-aware); None for a layer without a bias
        and correction off."""
        fp = self._fp_biases.get(name)
        if self._input_means is None or name not in self._input_means:
            return fp
        aware = self._input_samples is not None and name in self._input_samples
        aq = aq if aware else None
        if wq is None and aq is None:
            return fp
        key = (name, wq, aq)
        hit = self._bias_cache.get(key)
        if hit is None:
            layer, mean = self._layers[name], self._input_means[name]
            shift = weight_shift(layer, self._quantized_weight(name, wq), self._quantized_input_mean(name, aq)) \
                - weight_shift(layer, self._fp_weights[name], mean)
            hit = fp - shift
            self._bias_cache[key] = hit
        return hit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def weight_shift(layer: nn.Module, delta_w: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Per output channel, the contraction (ΔW)·E[x] of a conv or linear layer's weight (or weight change) with the
    per-channel input mean `mean`: its expected output (change), for a spatially uniform input (zero padding at the
    borders is not modelled)."""
    if isinstance(layer, nn.Conv2d):
        groups = layer.groups
        out_c, in_g = delta_w.shape[:2]
        summed = delta_w.sum(dim=(2, 3))                                   # [out, in/groups]
        per_group = mean.reshape(groups, in_g)                             # [groups, in/groups]
        group_of = torch.arange(out_c, device=delta_w.device) // (out_c // groups)
        return (summed * per_group[group_of]).sum(1)
    return delta_w @ mean


def _per_chunk(x: torch.Tensor, m: int, quantizers: list) -> torch.Tensor:
    if all(q is None for q in quantizers):
        return x
    return torch.cat([q(c) if q is not None else c for c, q in zip(x.chunk(m, 0), quantizers)], 0)


class MatmulOperands(nn.Module):
    """Observes / quantizes the two operands of one attention matmul (a leaf module, so graph
    tracing keeps it as one call and quantizer changes take effect at run time)."""

    def __init__(self, owner: QuantModel, name: str):
        super().__init__()
        object.__setattr__(self, "_owner", owner)  # not a submodule: keeps the tree acyclic
        self.unit_name = name

    def forward(self, a: torch.Tensor, w: torch.Tensor):
        return self._owner._matmul_operands(self.unit_name, a, w)
