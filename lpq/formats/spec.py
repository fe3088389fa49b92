"""Spec strings: one canonical text form per format (LP-FORMAT §7, BASELINE-FORMATS §3).

A spec is ``name``, ``name<arg,...>`` or either followed by ``@sf`` (a scale exponent for
baseline quantizers). Families register a constructor under their name, timm-registry style,
so adding a family never edits the parser.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .base import Format

_FAMILIES: dict[str, Callable[["ParsedSpec"], "Format"]] = {}

_SPEC_RE = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*(?:<(.*)>)?\s*")
_INT_RE = re.compile(r"[+-]?\d+")


def register_family(*names: str):
    """Class/function decorator: make `parse` build this family for the given spec names."""

    def deco(builder):
        for name in names:
            if name in _FAMILIES:
                raise RuntimeError(f"format family {name!r} registered twice")
            _FAMILIES[name] = builder
        return builder

    return deco


def family_names() -> list[str]:
    """All registered spec names, sorted."""
    return sorted(_FAMILIES)


@dataclass(frozen=True)
class ParsedSpec:
    """A spec string split into its name, positional arguments, options and scale."""

    text: str
    name: str
    args: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    sf_text: str | None

    def int_arg(self, index: int, param: str) -> int:
        raw = self.args[index]
        if not _INT_RE.fullmatch(raw):
            raise ValueError(f"{param}={raw!r} is invalid in {self.text!r}: need an integer")
        return int(raw)

    def expect_args(self, *params: str) -> None:
        if len(self.args) != len(params):
            want = f"{self.name}<{','.join(params)}>" if params else self.name
            raise ValueError(
                f"{self.text!r} has {len(self.args)} parameter(s); {self.name} takes "
                f"{len(params)}: {want}"
            )

    def expect_no_options(self) -> None:
        if self.options:
            raise ValueError(f"option {self.options[0][0]!r} is not allowed for {self.name} in {self.text!r}")


def parse_real(text: str, param: str, context: str) -> float:
    """A finite real from its decimal text (sf parameters and @sf scales)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{param}={text!r} is invalid in {context!r}: need a finite real number") from None
    if not math.isfinite(value):
        raise ValueError(f"{param}={text!r} is invalid in {context!r}: need a finite real number")
    return value


def format_real(value: float) -> str:
    """Canonical text of a real parameter: Python repr, no trailing '.0', '-0' as '0'."""
    text = repr(float(value))
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def split_spec(spec: str) -> ParsedSpec:
    """Split a spec string into its parts, without interpreting the family."""
    if not isinstance(spec, str):
        raise ValueError(f"format spec must be a string, got {type(spec).__name__}: {spec!r}")
    base, sep, sf_text = spec.partition("@")
    if sep and not sf_text.strip():
        raise ValueError(f"format spec {spec!r} has an empty scale after '@'")
    m = _SPEC_RE.fullmatch(base)
    if not m:
        raise ValueError(
            f"format spec {spec!r} is not of the form name or name<params> (optionally @sf); "
            f"known families: {', '.join(family_names())}"
        )
    name = m.group(1).lower()
    args: list[str] = []
    options: list[tuple[str, str]] = []
    if m.group(2) is not None:
        items = [item.strip() for item in m.group(2).split(",")]
        for item in items:
            if "=" in item:
                key, _, value = item.partition("=")
                key, value = key.strip().lower(), value.strip().lower()
                if any(k == key for k, _ in options):
                    raise ValueError(f"option {key!r} is repeated in {spec!r}")
                options.append((key, value))
            elif options:
                raise ValueError(f"positional parameter {item!r} follows an option in {spec!r}")
            else:
                if item == "":
                    raise ValueError(f"format spec {spec!r} has an empty parameter")
                args.append(item)
    return ParsedSpec(spec, name, tuple(args), tuple(options), sf_text.strip() if sep else None)


def parse(spec: str) -> "Format":
    """Build the Format named by a spec string, e.g. ``lp<8,1,3,0.5>`` or ``int<4>@3.25``.

    Formats are immutable values: the same string returns the same cached object, so its
    tables are built once per process."""
    if not isinstance(spec, str):
        raise ValueError(f"format spec must be a string, got {type(spec).__name__}: {spec!r}")
    return _parse_cached(spec)


@functools.lru_cache(maxsize=4096)
def _parse_cached(spec: str) -> "Format":
    parsed = split_spec(spec)
    builder = _FAMILIES.get(parsed.name)
    if builder is None:
        raise ValueError(
            f"unknown format family {parsed.name!r} in {spec!r}; known: {', '.join(family_names())}"
        )
    return builder(parsed)


# --- path-safe form (LP-FORMAT §7) ---------------------------------------------------------

_NEG_NUMBER = re.compile(r"-(?=\d|\.\d)")


def path_safe(spec: str) -> str:
    """File-name form of a spec: ``lp<8,1,3,-0.5>`` -> ``lp_8_1_3_m0.5``; reversible."""
    canonical = parse(spec).spec
    base, sep, sf_text = canonical.partition("@")
    name, _, rest = base.partition("<")
    fields = [f for f in rest.rstrip(">").split(",") if f] if rest else []
    out = [name]
    for field in fields:
        if "=" in field:
            out.append(field.replace("=", "-"))
        else:
            out.append("m" + field[1:] if field.startswith("-") else field)
    text = "_".join(out)
    if sep:
        text += "_at_" + ("m" + sf_text[1:] if sf_text.startswith("-") else sf_text)
    return text


def from_path_safe(text: str) -> str:
    """Inverse of `path_safe`: the canonical spec string."""
    body, sep, sf_text = text.partition("_at_")
    name = max((n for n in _FAMILIES if body == n or body.startswith(n + "_")), key=len, default=None)
    if name is None:
        raise ValueError(f"{text!r} is not a path-safe format spec; known families: {', '.join(family_names())}")
    rest = body[len(name) + 1:]
    fields = []
    for field in rest.split("_") if rest else []:
        if re.fullmatch(r"m\.?\d.*", field):
            fields.append("-" + field[1:])
        elif field[:1].isalpha():
            fields.append(field.replace("-", "=", 1))
        else:
            fields.append(field)
    spec = name + (f"<{','.join(fields)}>" if fields else "")
    if sep:
        spec += "@" + ("-" + sf_text[1:] if sf_text.startswith("m") else sf_text)
    return parse(spec).spec
