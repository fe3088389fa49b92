"""Fold BatchNorm into the preceding convolution before quantization (LPQ §1).

conv(x)·γ/√(σ²+ε) + (β − μ·γ/√(σ²+ε)) is rewritten as one conv with scaled weights and a
new bias; the BatchNorm module is replaced by Identity (or by its activation, for timm's
BatchNormAct2d). Pairs are found on the torch.fx graph: a BatchNorm whose only input is a conv
output that nothing else uses."""
from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger("lpq")


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def _conv_bn_pairs_fx(model: nn.Module) -> list[tuple[str, str]]:
    import torch.fx

    class LeafTracer(torch.fx.Tracer):
        """Keeps conv and BatchNorm subclasses (timm's Conv2dSame, BatchNormAct2d) as leaves."""

        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return isinstance(m, (nn.Conv2d, nn.modules.batchnorm._BatchNorm)) or super().is_leaf_module(m, qualname)

    graph = LeafTracer().trace(model)
    mods = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(mods.get(node.target), nn.modules.batchnorm._BatchNorm):
            continue
        src = node.args[0] if node.args else None
        if (
            isinstance(src, torch.fx.Node) and src.op == "call_module"
            and isinstance(mods.get(src.target), nn.Conv2d) and len(src.users) == 1
        ):
            pairs.append((src.target, node.target))
    return pairs


def _conv_bn_pairs_by_order(model: nn.Module) -> list[tuple[str, str]]:
    """Fallback for models torch.fx cannot trace: a conv immediately followed by a BatchNorm of
    matching width inside an nn.Sequential (whose forward guarantees that data flow)."""
    pairs = []
    for pname, parent in model.named_modules():
        if type(parent) is not nn.Sequential:
            continue
        kids = list(parent.named_children())
        for (cn, c), (bn_name, b) in zip(kids, kids[1:]):
            if isinstance(c, nn.Conv2d) and isinstance(b, nn.modules.batchnorm._BatchNorm) and c.out_channels == b.num_features:
                prefix = pname + "." if pname else ""
                pairs.append((prefix + cn, prefix + bn_name))
    return pairs


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> list[tuple[str, str]]:
    """Fold every conv->BN pair of an eval-mode model in place; returns the folded pairs."""
    try:
        pairs = _conv_bn_pairs_fx(model)
    except Exception as err:  # dynamic control flow etc.
        log.info("torch.fx cannot trace the model (%s); folding BatchNorm by module order", type(err).__name__)
        pairs = _conv_bn_pairs_by_order(model)
    for conv_name, bn_name in pairs:
        conv: nn.Conv2d = model.get_submodule(conv_name)
        bn = model.get_submodule(bn_name)
        if bn.running_mean is None or bn.running_var is None:
            continue  # BN without running statistics cannot be folded statically
        gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
        factor = gamma / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(factor.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
        old_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = beta + (old_bias - bn.running_mean) * factor
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype))
        else:
            conv.bias.copy_(new_bias)
        # The folded channel's pre-activation distribution on the training data: mean beta, std
        # |gamma|·sqrt(var/(var+eps)) (a channel with var << eps is nearly constant). Read by
        # quant.equalize's bias absorption (DFQ, Nagel et al. 2019 §4.2), which needs no data.
        conv.lpq_preact = (beta.detach().clone().float(),
                           (gamma.abs() * torch.sqrt(bn.running_var / (bn.running_var + bn.eps))).detach().clone().float())
        replacement: nn.Module = nn.Identity()
        act = getattr(bn, "act", None)  # timm BatchNormAct2d = BN + (drop) + activation
        if isinstance(act, nn.Module):
            drop = getattr(bn, "drop", None)
            replacement = nn.Sequential(drop, act) if isinstance(drop, nn.Module) and not isinstance(drop, nn.Identity) else act
        _set_submodule(model, bn_name, replacement)
    log.info("folded %d BatchNorm layers into convolutions", len(pairs))
    return pairs
