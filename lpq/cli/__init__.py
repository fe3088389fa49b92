"""`lpq <command> key=value ...`: one Hydra-configured entry point for every command.

Commands: train, evaluate, calibrate, search, reconstruct, hwsim. Overrides use Hydra's grammar; format spec strings are quoted for
Hydra automatically (LP-FORMAT §7), so `quant.w_format='lp<8,*,*,*>'` works as written.
`lpq compare RUN RUN ...` takes evaluate out_dirs instead of overrides (paired McNemar test, lpq.pipeline.compare).
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from ..config import SPEC_KEYS, compose, conf_dir, quote_spec_overrides  # noqa: F401 (re-exported)

log = logging.getLogger("lpq")

COMMANDS = ("train", "evaluate", "calibrate", "search", "reconstruct", "hwsim")


def _setup_runtime() -> None:
    """Offline and deterministic before any model library initialises (PIPELINE §8, §9)."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # numba's thread pool follows OMP_NUM_THREADS (a workflow job's `threads`): see lpq.kernels.cpu.use_threads
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0 \
            and "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
    import torch

    # torch.use_deterministic_algorithms() also sets torch._inductor.config, and importing inductor costs
    # ≈1.8 s per process (every workflow job). Nothing here compiles, so set the eager flag directly and the
    # inductor flag only when inductor is already loaded.
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    inductor_config = sys.modules.get("torch._inductor.config")
    if inductor_config is not None:
        inductor_config.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _write_provenance(out_dir: Path, cfg, overrides: list[str]) -> None:
    from omegaconf import OmegaConf

    from ..pipeline import atomic

    atomic.write_text(out_dir / ".hydra" / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic.write_text(out_dir / ".hydra" / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(overrides)))


def _command_summary(command: str) -> str:
    from .help import COMMANDS_HELP

    return COMMANDS_HELP[command].summary


def _print_help(command: str, overrides: list[str]) -> int:
    """`lpq <command> [overrides] --help`: the command's help with the defaults those overrides compose to."""
    from .help import render

    try:
        cfg = compose(overrides)
    except Exception as err:
        print(f"error: bad overrides: {err}", file=sys.stderr)
        return 2
    print(render(command, conf_dir(), cfg, overrides), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__.strip())
        print("\ncommands:\n" + "\n".join(f"  {c:<12} {_command_summary(c)}" for c in COMMANDS)
              + "\n  compare      paired exact McNemar test between `lpq evaluate` runs (lpq compare RUN RUN ...)")
        print("\n`lpq <command> --help` shows a command's inputs, outputs, config keys with defaults, and examples.")
        print("\nexamples:\n  lpq train model=digits_cnn out_dir=runs/cnn\n"
              "  lpq evaluate model=digits_cnn model.checkpoint=runs/cnn/model.pt "
              "quant.w_format='lp<8,*,*,*>' quant.a_format='lp<8,*,*,*>' out_dir=runs/cnn-lp8\n"
              "  lpq calibrate model=digits_cnn model.checkpoint=runs/cnn/model.pt out_dir=runs/cnn-calib\n"
              "  lpq search model=digits_cnn model.checkpoint=runs/cnn/model.pt search.format=lp "
              "budget.w_bits=4 budget.a_bits=4 out_dir=runs/cnn-lpq\n"
              "  lpq reconstruct model=digits_cnn model.checkpoint=runs/cnn/model.pt "
              "quant.config=runs/cnn-lpq/qconfig.json quant.reconstruct=brecq out_dir=runs/cnn-lpq-brecq\n"
              "  lpq hwsim model=digits_cnn quant.config=runs/cnn-lpq/qconfig.json hw=lpa out_dir=runs/cnn-hw\n"
              "  lpq compare runs/cnn-lp8 runs/cnn-lpq-eval")
        return 0 if args else 2
    command, overrides = args[0], args[1:]
    if command == "compare":  # paths, not Hydra overrides
        from ..pipeline.compare import main as compare_main

        return compare_main(overrides)
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; available: {', '.join(COMMANDS)}, compare "
              "(lpq --help lists them)", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in overrides):
        return _print_help(command, [a for a in overrides if a not in ("-h", "--help")])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    try:
        cfg = compose(overrides)
    except Exception as err:  # Hydra grammar / unknown key errors
        print(f"error: bad overrides: {err}", file=sys.stderr)
        return 2
    if cfg.get("out_dir") in (None, ""):
        print("error: out_dir is not set: add out_dir=DIR", file=sys.stderr)
        return 2
    _setup_runtime()
    out_dir = Path(cfg.out_dir)
    start = time.perf_counter()
    try:
        import importlib

        importlib.import_module(f"{__name__}.{command}").run(cfg, out_dir, overrides)
    except (ValueError, OSError) as err:  # bad input; OSError: unreadable files (e.g. corrupt images)
        print(f"error: {err}", file=sys.stderr)
        return 2
    _write_provenance(out_dir, cfg, overrides)
    log.info("%s finished in %.1f s; outputs in %s", command, time.perf_counter() - start, out_dir)
    return 0
