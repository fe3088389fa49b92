"""The Hydra config of every run: the conf/ directory and `compose(overrides)` over it (one place, so the `lpq`
commands, lpq.runs and the workflow's grid compose exactly the same way)."""
from __future__ import annotations

import os
import re
from pathlib import Path

SPEC_KEYS = ("quant.w_format", "quant.a_format")


def conf_dir() -> Path:
    """The Hydra config directory: $LPQ_CONF_DIR, else conf/ next to the lpq package."""
    env = os.environ.get("LPQ_CONF_DIR")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[1] / "conf", Path.cwd() / "conf"]
    for c in candidates:
        if (c / "config.yaml").is_file():
            return c.resolve()
    raise SystemExit("error: cannot find the conf/ directory (set LPQ_CONF_DIR)")


def quote_spec_overrides(overrides: list[str]) -> list[str]:
    """Wrap spec-string values in Hydra quotes: `quant.w_format=lp<8,*,*,*>` ->
    `quant.w_format="lp<8,*,*,*>"` (commas would otherwise be read as a sweep)."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.lstrip("+~") in SPEC_KEYS and not re.fullmatch(r"(['\"]).*\1", value):
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(f"{key}{sep}{value}")
    return out


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=quote_spec_overrides(overrides))
