"""Segmented execution of a quantized model for prefix reuse (LPQ §8.4).

The model is traced once with torch.fx (conv, linear, BatchNorm and attention-operand modules
kept as leaves, so the quantization hooks fire at run time) and cut at the tap outputs (block
outputs) and, by default, also right before every quantized unit, so a child whose first changed
unit lies inside a block still reuses the part of the block before it. `run` executes the graph
from any boundary, given the live values saved at that boundary (all values defined before it and
used after it, e.g. a residual branch), and reports each tap's output; the values saved are
unquantized (each layer quantizes its own input). Running the suffix executes exactly the ops of a full
forward on the same tensors, so results are bit-identical."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.fx
from torch import nn

from ..quant.model import MatmulOperands, QuantModel

DEFAULT_TAP_CLASSES = ("BasicBlock", "Bottleneck", "InvertedResidual", "Block", "SwinTransformerBlock",
                       "ResidualBlock", "ResBottleneckBlock", "EdgeResidual")


class _LeafTracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm, MatmulOperands)):
            return True
        return super().is_leaf_module(m, qualname)


def default_taps(model: nn.Module) -> list[str]:
    """Tap modules: the model's own `lpq_taps`, else the outermost blocks of known classes."""
    own = getattr(model, "lpq_taps", None)
    if own:
        return list(own)
    taps: list[str] = []
    for name, mod in model.named_modules():
        if type(mod).__name__ in DEFAULT_TAP_CLASSES and not any(name.startswith(t + ".") for t in taps):
            taps.append(name)
    return taps


@dataclass
class Boundary:
    node_index: int  # index of the last node before the cut; the segment after it starts at +1
    tap: str | None  # the tap module whose output ends here, or None for a cut before a unit
    live: list[torch.fx.Node]  # values defined up to here and used later


class SegmentedModel:
    """A traced QuantModel split at its taps."""

    def __init__(self, qm: QuantModel, taps: list[str], cut_units: bool = True):
        self.qm = qm
        graph = _LeafTracer().trace(qm.model)
        self.gm = torch.fx.GraphModule(qm.model, graph)
        self.nodes = list(graph.nodes)
        index = {n: i for i, n in enumerate(self.nodes)}
        last_use = {n: i for i, n in enumerate(self.nodes)}
        for i, n in enumerate(self.nodes):
            for arg in n.all_input_nodes:
                last_use[arg] = max(last_use[arg], i)
        self._free_after: dict[int, list[torch.fx.Node]] = {}
        for n, i in last_use.items():
            self._free_after.setdefault(i, []).append(n)
        tap_index = {}
        for tap in taps:
            hits = [i for i, n in enumerate(self.nodes) if tap in n.meta.get("nn_module_stack", {})]
            if not hits:
                raise ValueError(f"tap {tap!r} is not a module executed by the model's forward")
            tap_index[tap] = max(hits)
        unit_nodes = {}
        for i, n in enumerate(self.nodes):
            if n.op == "call_module":
                target = str(n.target)
                mod = self.gm.get_submodule(target)
                name = mod.unit_name if isinstance(mod, MatmulOperands) else target
                unit_nodes.setdefault(name, i)
        cuts: dict[int, str | None] = {}
        if cut_units and unit_nodes:
            first = min(unit_nodes.values())  # nothing before the first unit is worth saving
            for unit in qm.units:
                if unit_nodes.get(unit.name, first) > first:
                    cuts[unit_nodes[unit.name] - 1] = None
        for tap, i in tap_index.items():
            cuts[i] = tap  # a tap output wins over a unit cut at the same place
        self.boundaries: list[Boundary] = []
        for i in sorted(cuts):
            if i >= len(self.nodes) - 1:
                continue
            live = [n for n in self.nodes[: i + 1] if last_use[n] > i]
            self.boundaries.append(Boundary(i, cuts[i], live))
        self.taps = [b.tap for b in self.boundaries if b.tap is not None]
        # boundary number (1-based, as passed to on_boundary) -> position of its tap in self.taps
        self.tap_ordinal = {k + 1: self.taps.index(b.tap) for k, b in enumerate(self.boundaries) if b.tap is not None}
        starts = [b.node_index for b in self.boundaries]
        self.unit_segment = {}
        for unit in qm.units:
            if unit.name not in unit_nodes:
                raise ValueError(f"unit {unit.name!r} was not found in the traced graph")
            self.unit_segment[unit.name] = sum(1 for s in starts if s < unit_nodes[unit.name])
        self.num_segments = len(self.boundaries) + 1
        self._index = index
        self._layer_targets = {u.name for u in qm.units if u.kind in ("conv", "linear")}

    def run(self, x: torch.Tensor | None, start: int = 0, saved: dict | None = None,
            on_boundary: Callable[[int, torch.Tensor, dict], None] | None = None,
            stop: int | None = None, module_call: Callable | None = None) -> torch.Tensor | None:
        """Run from boundary `start` (0 = the input x) to the output, or only up to boundary
        `stop` (then None is returned). At each later boundary b (1-based)
        `on_boundary(b, tap_output, live_values)` is called; tap_output is None at a cut that is
        not a tap. In the QuantModel's group mode conv/linear layers run per chunk. `module_call(target, module,
        args, kwargs)`, when given, runs every call_module node instead (lpq.quant.reconstruct: soft weights and
        straight-through activation quantizers)."""
        group = self.qm.in_group_mode
        env: dict = {}
        if start == 0:
            first = 0
        else:
            env.update(saved)
            first = self.boundaries[start - 1].node_index + 1
        b_next = start
        for i in range(first, len(self.nodes)):
            node = self.nodes[i]
            op = node.op
            if op == "placeholder":  # the input, then optional forward args at their defaults
                env[node] = x if node is self.nodes[0] else (node.args[0] if node.args else None)
            elif op == "output":
                return torch.fx.node.map_arg(node.args[0], env.__getitem__)
            else:
                args = torch.fx.node.map_arg(node.args, env.__getitem__)
                kwargs = torch.fx.node.map_arg(node.kwargs, env.__getitem__)
                if op == "call_module":
                    mod = self.gm.get_submodule(node.target)
                    if module_call is not None:
                        env[node] = module_call(str(node.target), mod, args, kwargs)
                    elif group and node.target in self._layer_targets:
                        env[node] = self.qm.group_forward(node.target, mod, *args)
                    else:
                        env[node] = mod(*args, **kwargs)
                elif op == "call_function":
                    env[node] = node.target(*args, **kwargs)
                elif op == "call_method":
                    self_obj, *rest = args
                    env[node] = getattr(self_obj, node.target)(*rest, **kwargs)
                elif op == "get_attr":
                    obj = self.gm
                    for part in str(node.target).split("."):
                        obj = getattr(obj, part)
                    env[node] = obj
            if b_next < len(self.boundaries) and i == self.boundaries[b_next].node_index:
                bnd = self.boundaries[b_next]
                b_next += 1
                if on_boundary is not None:
                    on_boundary(b_next, env[self.nodes[i]] if bnd.tap is not None else None,
                                {n: env[n] for n in bnd.live})
                if stop is not None and b_next >= stop:
                    return None
            for dead in self._free_after.get(i, ()):
                if dead.op != "output":
                    env.pop(dead, None)
        raise RuntimeError("graph has no output node")
