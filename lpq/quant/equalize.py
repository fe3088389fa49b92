"""Cross-layer equalization and bias absorption (DFQ, Nagel et al. 2019, §4.1 and §4.2), exact in FP32
(quant.equalize=true, applied after BatchNorm folding, for every number format alike).

A *chain* is conv A -> activation -> channel-wise ops -> conv/linear B inside one nn.Sequential (the
data flow nn.Sequential guarantees), where the activation is ReLU, ReLU6 or a per-channel clamp and
the ops between are Identity (a folded BN), Dropout, ZeroPad2d, global average pooling, flatten or a
[N,C] -> [N,C,1,1] view. Both rewrites change weights and biases but not what the network computes:

- Equalization: output channel i of A is divided by s_i and input channel i of B multiplied by s_i.
  DFQ's rule (`dfq`) is s_i = sqrt(r1_i / r2_i) with r1_i, r2_i the channels' weight ranges (max |w|), so
  both weight ranges become sqrt(r1_i r2_i); it can leave the activation between them with very unequal
  channel ranges. The default `joint` rule (this project's) balances A's weights, the activation and
  B's weights together: s_i = (r1_i a_i / r2_i)^(1/3), the least-squares solution for equal log-ranges
  of all three, with a_i the channel's likely activation range (m ± 3 sigma within the clamp, from BN
  statistics); channels with no spread keep the DFQ rule. This is exact for ReLU (positively homogeneous); ReLU6 is not, so the activation
  becomes a per-channel clamp [0, 6/s_i] (`ChannelClamp`) instead of DFQ's replacement of ReLU6 by
  ReLU. Sweeps repeat until the scales stop changing.
- Bias absorption: channel i of A's output is shifted down by c_i = clamp(m_i - k sigma_i, lo_i, hi_i)
  (m, sigma: the channel's pre-activation mean and std recorded by BN folding; no data is read; DFQ's
  k = 3 keeps a plain ReLU nearly exact, here the per-channel clamp makes any k exact, and the default
  k = 0 (quant.absorb_sigmas) centres each channel at its mean, measured best on MobileNet): A's
  bias and clamp bounds move by -c_i, and B's bias gets W_B·c. Zero padding before B becomes padding
  with -c_i (`ChannelPad`), so border pixels are exact too. A channel whose values sit on a large
  offset with a small spread (common after BN folding in MobileNets) then reaches B's activation
  quantizer centred near zero.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger("lpq")

SWEEPS = 20
TOLERANCE = 1e-6  # stop when no scale changes by more than this (relative)


class ChannelClamp(nn.Module):
    """clamp(x, lo_c, hi_c) per channel (dim 1); ReLU is [0, inf], ReLU6 is [0, 6]."""

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor):
        super().__init__()
        self.register_buffer("lo", lo.clone().float())
        self.register_buffer("hi", hi.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return torch.maximum(torch.minimum(x, self.hi.view(shape)), self.lo.view(shape))


class ChannelPad(nn.Module):
    """Constant padding with value v_c per channel: pad(x - v) + v (F.pad order: left, right, top, bottom)."""

    def __init__(self, pads: tuple[int, int, int, int], value: torch.Tensor):
        super().__init__()
        self.pads = tuple(int(p) for p in pads)
        self.register_buffer("value", value.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.value.view(1, -1, 1, 1)
        return F.pad(x - v, self.pads) + v

    def extra_repr(self) -> str:
        return f"pads={self.pads}"


_ACTIVATIONS = (nn.ReLU, nn.ReLU6, ChannelClamp)


def _is_global_pool(m: nn.Module) -> bool:
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return m.output_size in (1, (1, 1))
    return type(m).__name__ in ("GlobalAvgPool", "ChannelsToMap", "SelectAdaptivePool2d")


@dataclass
class Chain:
    parent: nn.Sequential
    a: str  # child names inside parent
    act: str
    pad: str | None  # an explicit ZeroPad2d / ChannelPad right before b
    b: str
    pooled: bool  # a global pooling sits between act and b (b sees [N, C] or [N, C, 1, 1])

    def module(self, name: str) -> nn.Module:
        return self.parent.get_submodule(name)


def find_chains(model: nn.Module) -> list[tuple[str, Chain]]:
    """(prefix, chain) for every conv -> activation -> channel-wise ops -> conv/linear run of an nn.Sequential."""
    out = []
    for pname, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        kids = list(parent.named_children())
        for i, (an, a) in enumerate(kids):
            if not isinstance(a, nn.Conv2d) or a.padding_mode != "zeros":
                continue
            j, act, pad, pooled = i + 1, None, None, False
            while j < len(kids):
                name, m = kids[j]
                if act is None:
                    if isinstance(m, _ACTIVATIONS):
                        act = name
                    elif not isinstance(m, (nn.Identity, nn.Dropout)):
                        break
                elif pad is not None:
                    break  # a pad must sit right before B
                elif isinstance(m, (nn.Identity, nn.Dropout)) or (pooled and isinstance(m, nn.Flatten)):
                    pass
                elif _is_global_pool(m):
                    pooled = True
                elif isinstance(m, (nn.ZeroPad2d, ChannelPad)) and not pooled:
                    pad = name
                else:
                    break
                j += 1
            if act is None or j >= len(kids):
                continue
            bn, b = kids[j]
            ok_conv = isinstance(b, nn.Conv2d) and b.in_channels == a.out_channels and b.padding_mode == "zeros"
            ok_lin = isinstance(b, nn.Linear) and b.in_features == a.out_channels and pooled
            if ok_conv or ok_lin:
                if pad is not None and not isinstance(b, nn.Conv2d):
                    continue
                out.append((pname, Chain(parent, an, act, pad, bn, pooled)))
    return out


def _clamp_of(act: nn.Module, channels: int) -> ChannelClamp:
    if isinstance(act, ChannelClamp):
        return act
    hi = 6.0 if isinstance(act, nn.ReLU6) else float("inf")
    return ChannelClamp(torch.zeros(channels), torch.full((channels,), hi))


def _input_channel_index(b: nn.Module) -> torch.Tensor:
    """For each element of B's weight along dims (0, 1): the index of the input channel it reads."""
    if isinstance(b, nn.Linear):
        return torch.arange(b.in_features).expand(b.out_features, -1)
    per_group_in = b.in_channels // b.groups
    per_group_out = b.out_channels // b.groups
    group = torch.arange(b.out_channels) // per_group_out
    return group[:, None] * per_group_in + torch.arange(per_group_in)[None, :]


def _input_scale(b: nn.Module, s: torch.Tensor) -> torch.Tensor:
    """s (per input channel of B) laid out over B's weight."""
    idx = _input_channel_index(b)
    shape = tuple(idx.shape) + (1,) * (b.weight.dim() - 2)
    return s[idx].reshape(shape).to(b.weight.dtype)


def _input_ranges(b: nn.Module) -> torch.Tensor:
    w = b.weight.detach().abs()
    per_elem = w.amax(dim=tuple(range(2, w.dim()))) if w.dim() > 2 else w
    idx = _input_channel_index(b)
    r = torch.zeros(int(idx.max()) + 1)
    return r.scatter_reduce(0, idx.reshape(-1), per_elem.reshape(-1).float(), reduce="amax")


@torch.no_grad()
def _equalize_once(chain: Chain, rule: str) -> float:
    a, b = chain.module(chain.a), chain.module(chain.b)
    act = _clamp_of(chain.module(chain.act), a.out_channels)
    if act is not chain.module(chain.act):
        setattr(chain.parent, chain.act, act)
    r1 = a.weight.detach().abs().reshape(a.out_channels, -1).amax(dim=1).float()
    r2 = _input_ranges(b)
    s = torch.sqrt(r1 / r2)
    if rule == "joint" and hasattr(a, "lpq_preact"):
        m, sd = a.lpq_preact
        spread = torch.minimum(m + 3 * sd, act.hi) - torch.maximum(m - 3 * sd, act.lo)  # likely activation range
        joint = (r1 * spread / r2) ** (1 / 3)
        s = torch.where(spread > 1e-6 * spread.max(), joint, s)
    s = torch.where((r1 > 0) & (r2 > 0) & torch.isfinite(s), s, torch.ones_like(s))
    a.weight.div_(s.view(-1, *[1] * (a.weight.dim() - 1)).to(a.weight.dtype))
    if a.bias is not None:
        a.bias.div_(s.to(a.bias.dtype))
    b.weight.mul_(_input_scale(b, s))
    act.lo.div_(s)
    act.hi.div_(s)
    if hasattr(a, "lpq_preact"):
        m, sd = a.lpq_preact
        a.lpq_preact = (m / s, sd / s)
    return float((s - 1).abs().max()) if len(s) else 0.0


@torch.no_grad()
def _absorb(chain: Chain, sigmas: float) -> int:
    a, b = chain.module(chain.a), chain.module(chain.b)
    if not hasattr(a, "lpq_preact"):
        return 0
    act = _clamp_of(chain.module(chain.act), a.out_channels)
    setattr(chain.parent, chain.act, act)
    m, sd = a.lpq_preact
    c = torch.minimum(torch.maximum(m - sigmas * sd, act.lo), act.hi)
    c = torch.where(torch.isfinite(c), c, torch.zeros_like(c))
    if not bool((c != 0).any()):
        return 0
    if a.bias is None:
        a.bias = nn.Parameter(torch.zeros(a.out_channels, dtype=a.weight.dtype))
    a.bias.sub_(c.to(a.bias.dtype))
    act.lo.sub_(c)
    act.hi.sub_(c)
    a.lpq_preact = (m - c, sd)
    w = b.weight.detach()
    shift = (w * _input_scale(b, c)).reshape(w.shape[0], -1).sum(dim=1)
    if b.bias is None:
        b.bias = nn.Parameter(torch.zeros(w.shape[0], dtype=w.dtype))
    b.bias.add_(shift.to(b.bias.dtype))
    # zero padding of the unshifted activation = padding with -c of the shifted one
    if chain.pad is not None:
        old = chain.module(chain.pad)
        pads = old.pads if isinstance(old, ChannelPad) else tuple(old.padding)
        value = (old.value if isinstance(old, ChannelPad) else torch.zeros_like(c)) - c
        setattr(chain.parent, chain.pad, ChannelPad(pads, value))
    elif isinstance(b, nn.Conv2d) and any(int(p) for p in _padding(b)):
        ph, pw = _padding(b)
        b.padding = (0, 0)
        setattr(chain.parent, chain.act, nn.Sequential(act, ChannelPad((pw, pw, ph, ph), -c)))
    return int((c != 0).sum())


def _padding(conv: nn.Conv2d) -> tuple[int, int]:
    if isinstance(conv.padding, str):
        raise ValueError(f"quant.equalize: conv with padding={conv.padding!r} is not supported (need explicit pads)")
    return int(conv.padding[0]), int(conv.padding[1])


RULES = ("joint", "dfq")


def equalize(model: nn.Module, scale: bool = True, absorb: bool = True, sigmas: float = 0.0,
             rule: str = "joint") -> dict:
    """Equalize (scale, by `rule`) and absorb biases (absorb, shift c = m - sigmas·std) over every chain of a
    BN-folded model, in place; returns a summary (chains, sweeps, shifted channels) for the run's log and metrics."""
    if rule not in RULES:
        raise ValueError(f"quant.equalize_rule={rule!r} is invalid: need one of {', '.join(RULES)}")
    chains = find_chains(model)
    sweeps = 0
    for sweeps in range(1, (SWEEPS if scale else 0) + 1):
        change = max((_equalize_once(ch, rule) for _, ch in chains), default=0.0)
        if change < TOLERANCE:
            break
    # A chain's activation slot may now hold Sequential(clamp, pad) from an earlier absorption: resolve
    # the clamp through it.
    shifted = 0
    for _, ch in chains:
        act = ch.module(ch.act)
        if isinstance(act, nn.Sequential) or not absorb:
            continue  # already absorbed (a chain is absorbed once)
        shifted += _absorb(ch, sigmas)
    summary = {"chains": len(chains), "scaled": bool(scale), "rule": rule, "sweeps": sweeps, "shifted_channels": shifted,
               "absorb_sigmas": float(sigmas)}
    log.info("cross-layer equalization: %d chains, %d sweeps; bias absorption shifted %d channels",
             len(chains), sweeps, shifted)
    return summary
