"""Trace a PyTorch model into GEMM records (HWMODEL §1.2, §1.3).

The model runs once on the `meta` device (shapes only, no weights or compute) under a
TorchFunctionMode that records conv1d/conv2d, linear, matmul/@, bmm, baddbmm, two-operand einsum
and scaled_dot_product_attention calls; forward pre-hooks name each call after the innermost
module on the stack. Ops that are not GEMMs are tallied (calls, output elements) for the report.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .workload import ConvGeom, GemmRecord

_EXCLUDED = {  # function __name__ → report category (§1.2 "not GEMMs")
    "layer_norm": "normalisation", "group_norm": "normalisation", "batch_norm": "normalisation",
    "instance_norm": "normalisation", "rms_norm": "normalisation",
    "softmax": "softmax", "log_softmax": "softmax",
    "relu": "activation", "relu_": "activation", "gelu": "activation", "silu": "activation", "sigmoid": "activation",
    "tanh": "activation", "hardswish": "activation", "hardsigmoid": "activation", "relu6": "activation",
    "hardtanh": "activation", "leaky_relu": "activation", "mish": "activation",
    "max_pool1d": "pooling", "max_pool2d": "pooling", "avg_pool1d": "pooling", "avg_pool2d": "pooling",
    "adaptive_avg_pool1d": "pooling", "adaptive_avg_pool2d": "pooling", "adaptive_max_pool2d": "pooling",
    "max_pool2d_with_indices": "pooling",
    "__add__": "residual_add", "__iadd__": "residual_add", "add": "residual_add", "add_": "residual_add",
    "embedding": "embedding",
}


def _arg(args: tuple, kwargs: dict, index: int, name: str, default=None):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _pair(value) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _prod(values) -> int:
    return int(math.prod(int(v) for v in values))


@dataclass
class _Trace:
    """Mutable state of one traced forward pass."""

    names: dict[int, str]
    stack: list[str] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)
    current_call: dict[str, int] = field(default_factory=dict)
    free_matmuls: Counter = field(default_factory=Counter)
    records: list[GemmRecord] = field(default_factory=list)
    excluded: dict[str, list[int]] = field(default_factory=dict)

    def owner(self) -> str:
        return self.stack[-1] if self.stack else ""

    def suffix(self, module: str) -> str:
        k = self.current_call.get(module, 1)
        return "" if k == 1 else f"#{k}"

    def add(self, name: str, op: str, M: int, N: int, K: int, count: int, batch_axis: str, u_a: int | None = None,
            conv: ConvGeom | None = None) -> None:
        self.records.append(GemmRecord(name, op, int(M), int(N), int(K), int(count), batch_axis,
                                       int(u_a) if u_a else 0, conv))


class _GemmRecorder(TorchFunctionMode):
    def __init__(self, trace: _Trace):
        super().__init__()
        self.trace = trace

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            self._record(func, args, kwargs, out)
        except Exception as err:  # a record we cannot interpret must not go unnoticed
            raise RuntimeError(f"hwmodel extraction failed on {getattr(func, '__name__', func)} in module "
                               f"{self.trace.owner()!r}: {err}") from err
        return out

    # ---- dispatch ---------------------------------------------------------------------------
    def _record(self, func, args, kwargs, out) -> None:
        if func in (F.conv2d, F.conv1d):
            self._conv(func is F.conv1d, args, kwargs, out)
        elif func is F.linear:
            self._linear(args, kwargs)
        elif func is F.scaled_dot_product_attention:
            self._sdpa(args, kwargs)
        elif func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__):
            self._matmul(args[0], args[1])
        elif func in (torch.bmm, torch.Tensor.bmm):
            self._matmul(args[0], args[1])
        elif func in (torch.baddbmm, torch.Tensor.baddbmm):
            self._matmul(_arg(args, kwargs, 1, "batch1"), _arg(args, kwargs, 2, "batch2"))
        elif func is torch.einsum:
            self._einsum(args)
        else:
            category = _EXCLUDED.get(getattr(func, "__name__", ""))
            if category is not None and isinstance(out, torch.Tensor):
                if category == "residual_add" and not (len(args) > 1 and isinstance(args[1], torch.Tensor)
                                                       and args[1].numel() > 1):
                    return
                tally = self.trace.excluded.setdefault(category, [0, 0])
                tally[0] += 1
                tally[1] += out.numel()

    # ---- GEMM lowerings (§1.2) ----------------------------------------------------------------
    def _conv(self, is_1d: bool, args, kwargs, out) -> None:
        x, w = args[0], _arg(args, kwargs, 1, "weight")
        stride, padding = _arg(args, kwargs, 3, "stride", 1), _arg(args, kwargs, 4, "padding", 0)
        groups = int(_arg(args, kwargs, 6, "groups", 1))
        unbatched = x.dim() == (2 if is_1d else 3)
        B = 1 if unbatched else x.shape[0]
        c_in = x.shape[-2] if is_1d else x.shape[-3]
        c_out = w.shape[0]
        if is_1d:
            L, KL, OL = x.shape[-1], w.shape[-1], out.shape[-1]
            H, W_, KH, KW, OH, OW = 1, L, 1, KL, 1, OL
        else:
            H, W_ = x.shape[-2], x.shape[-1]
            KH, KW = w.shape[-2], w.shape[-1]
            OH, OW = out.shape[-2], out.shape[-1]
        s = _pair(stride)
        pad = padding if isinstance(padding, str) else _pair(padding)[0]
        geo = ConvGeom(int(H), int(W_), int(c_in), int(KH), int(KW), int(s[0]), pad, int(OH), int(OW), groups)
        name = self.trace.owner() + self.trace.suffix(self.trace.owner())
        self.trace.add(name, "conv", B * OH * OW, c_out // groups, (c_in // groups) * KH * KW, groups, "M",
                       B * H * W_ * c_in // groups, geo)

    def _linear(self, args, kwargs) -> None:
        x, w = args[0], _arg(args, kwargs, 1, "weight")
        M = _prod(x.shape[:-1]) if x.dim() > 1 else 1
        name = self.trace.owner() + self.trace.suffix(self.trace.owner())
        self.trace.add(name, "linear", M, w.shape[0], w.shape[1], 1, "M")

    def _sdpa(self, args, kwargs) -> None:
        q, k, v = args[0], _arg(args, kwargs, 1, "key"), _arg(args, kwargs, 2, "value")
        count = _prod(q.shape[:-2])
        L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
        owner = self.trace.owner()
        sfx = self.trace.suffix(owner)
        self.trace.add(f"{owner}.qk{sfx}", "attn_qk", L, S, E, count, "count")
        self.trace.add(f"{owner}.av{sfx}", "attn_av", L, Ev, S, count, "count")

    def _matmul(self, a: torch.Tensor, b: torch.Tensor) -> None:
        a_shape = (1,) + tuple(a.shape) if a.dim() == 1 else tuple(a.shape)
        b_shape = tuple(b.shape) + (1,) if b.dim() == 1 else tuple(b.shape)
        owner = self.trace.owner()
        sfx = self.trace.suffix(owner)
        if len(b_shape) == 2:  # shared right operand: fold every leading dim of a into M
            M, K, N, count, axis = _prod(a_shape[:-1]), a_shape[-1], b_shape[-1], 1, "M"
        else:
            batch = torch.broadcast_shapes(a_shape[:-2], b_shape[:-2])
            M, K, N, count, axis = a_shape[-2], a_shape[-1], b_shape[-1], _prod(batch), "count"
        if isinstance(a, nn.Parameter) or isinstance(b, nn.Parameter):
            self.trace.add(owner + sfx, "matmul", M, N, K, count, axis)
            return
        key = (owner, self.trace.current_call.get(owner, 1))
        self.trace.free_matmuls[key] += 1
        i = self.trace.free_matmuls[key]
        if i <= 2:
            op, tag = ("attn_qk", "qk") if i == 1 else ("attn_av", "av")
        else:
            op, tag = "matmul", f"mm{i}"
        self.trace.add(f"{owner}.{tag}{sfx}", op, M, N, K, count, axis)

    def _einsum(self, args) -> None:
        equation, operands = args[0], args[1:]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
        if len(operands) != 2:
            return  # only two-operand einsums are GEMMs (§1.3)
        a, b = operands
        lhs, _, rhs = equation.replace(" ", "").partition("->")
        ins = lhs.split(",")
        sizes: dict[str, int] = {}
        letters = []
        for spec, t in zip(ins, (a, b)):
            if "..." in spec:
                head, tail = spec.split("...")
                n_ell = t.dim() - len(head) - len(tail)
                spec = head + "".join(chr(0x100 + i) for i in range(n_ell)) + tail
            letters.append(spec)
            sizes.update({c: int(n) for c, n in zip(spec, t.shape)})
        if not _:
            counts = Counter("".join(letters))
            rhs = "".join(sorted(c for c, n in counts.items() if n == 1))
        elif "..." in rhs:
            ell = "".join(sorted(c for c in sizes if ord(c) >= 0x100))
            rhs = rhs.replace("...", ell)
        sa, sb, so = set(letters[0]), set(letters[1]), set(rhs)
        batch = sa & sb & so
        M = _prod(sizes[c] for c in (sa & so) - sb)
        N = _prod(sizes[c] for c in (sb & so) - sa)
        K = _prod(sizes[c] for c in (sa & sb) - so)
        count = _prod(sizes[c] for c in batch)
        owner = self.trace.owner()
        self.trace.add(owner + self.trace.suffix(owner), "matmul", M, N, K, count, "count" if batch else "M")


def _install_hooks(model: nn.Module, trace: _Trace) -> list:
    def pre(module, _args):
        name = trace.names.get(id(module))
        if name is not None:
            trace.calls[name] += 1
            trace.current_call[name] = trace.calls[name]
            trace.stack.append(name)

    def post(module, _args, _out):
        if trace.names.get(id(module)) is not None and trace.stack:
            trace.stack.pop()

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post, always_call=True))
    return handles


@dataclass
class Workload:
    """GEMM records in call order plus the excluded (non-GEMM) ops: category → (calls, elements)."""

    records: list[GemmRecord]
    excluded: dict[str, tuple[int, int]]
    device: str


def _trace(model: nn.Module, example: torch.Tensor) -> Workload:
    trace = _Trace({id(m): n for n, m in model.named_modules()})
    handles = _install_hooks(model, trace)
    try:
        with torch.no_grad(), _GemmRecorder(trace):
            model(example)
    finally:
        for h in handles:
            h.remove()
    excluded = {k: (v[0], v[1]) for k, v in sorted(trace.excluded.items())}
    batch = int(example.shape[0])
    return Workload([replace(r, batch=batch) for r in trace.records], excluded, str(example.device))


def extract_workload(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> Workload:
    """Trace `model` on an input [batch, *input_shape] (§1.3): `meta` first (the model is moved
    there), CPU with a zero input if the model cannot run on `meta`."""
    if not input_shape or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"input_shape={tuple(input_shape)!r} is invalid: need positive sizes, e.g. (3, 224, 224)")
    shape = (int(batch), *(int(d) for d in input_shape))
    model = model.eval()
    try:
        meta_model = model.to("meta")
        return _trace(meta_model, torch.zeros(shape, device="meta"))
    except Exception:  # noqa: BLE001 - ops without meta kernels: fall back to CPU (§1.3 step 1)
        cpu_model = model.to_empty(device="cpu") if _on_meta(model) else model.to("cpu")
        return _trace(cpu_model, torch.zeros(shape))


def _on_meta(model: nn.Module) -> bool:
    return any(p.is_meta for p in model.parameters())


def extract_gemms(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> list[GemmRecord]:
    """The GEMM records of `model` at `batch`, in call order (§1.3)."""
    return extract_workload(model, input_shape, batch).records
