"""Build a model from the `model` config group, with its weights loaded from local files only
(PIPELINE §9): a checkpoint path, the local Hugging Face cache, or the user's own entry point."""
from __future__ import annotations

import importlib.util
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .embedded import EMBEDDED_MODELS

log = logging.getLogger("lpq")


@dataclass
class LoadedModel:
    module: nn.Module
    name: str
    weights_source: str
    input_size: tuple[int, ...] | None  # (C, H, W) when known


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ValueError(f"model.checkpoint={path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or foreign file
        raise ValueError(f"model.checkpoint={path} could not be read as a PyTorch/safetensors checkpoint: {err}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"model.checkpoint={path} does not hold a state dict of tensors")
    return state


def _load_state(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ValueError(f"model.checkpoint={path} does not fit the model: {err}") from None
    if missing or unexpected:
        raise ValueError(
            f"model.checkpoint={path} does not fit the model: missing keys {list(missing)[:5]}, "
            f"unexpected keys {list(unexpected)[:5]}"
        )


def _embedded(cfg) -> LoadedModel:
    name = cfg.name
    module = EMBEDDED_MODELS[name]()
    ckpt = cfg.get("checkpoint")
    if ckpt is None:
        raise ValueError(
            f"model={name} needs trained weights: run `lpq train model={name} out_dir=DIR` (offline, under a minute) "
            f"and pass model.checkpoint=DIR/model.pt"
        )
    path = Path(str(ckpt)).expanduser()
    _load_state(module, _read_state_dict(path), path)
    from ..data.embedded import INPUT_SHAPE

    return LoadedModel(module.eval(), name, f"checkpoint:{path}", INPUT_SHAPE)


def _cifar_resnet(cfg) -> LoadedModel:
    from .cifar_resnet import INPUT_SIZE, cifar_resnet

    depth = cfg.get("depth")
    if depth in (None, "???"):
        raise ValueError("model.depth is not set: model=cifar_resnet needs model.depth (20, 32, 44, 56 or 110), "
                         "or use model=cifar_resnet32 etc.")
    try:
        depth = int(depth)
    except (TypeError, ValueError):
        raise ValueError(f"model.depth={depth!r} is invalid: need an integer 6n+2, e.g. 32") from None
    module = cifar_resnet(depth)
    name = str(cfg.get("name") or f"cifar_resnet{depth}")
    ckpt = cfg.get("checkpoint")
    if ckpt in (None, "", "???"):
        raise ValueError(
            f"model={name} needs pretrained weights: pass model.checkpoint=PATH (random weights are never used). "
            f"The published CIFAR-10 checkpoints are resnet{depth}-<hash>.th in the `pretrained_models/` folder of "
            f"the GitHub repository akamaster/pytorch_resnet_cifar10; plain state dicts and .safetensors load too")
    path = Path(str(ckpt)).expanduser()
    state = _read_state_dict(path)
    try:
        _load_state(module, state, path)
    except ValueError as err:
        found = _cifar_checkpoint_depth(state)
        hint = f" (the checkpoint holds a depth-{found} CIFAR ResNet: use model.depth={found})" if found else ""
        raise ValueError(f"{err}{hint}") from None
    return LoadedModel(module.eval(), name, f"checkpoint:{path}", INPUT_SIZE)


def _cifar_checkpoint_depth(state: dict[str, torch.Tensor]) -> int | None:
    """Depth 6n+2 of a CIFAR ResNet state dict (n = BasicBlocks in layer1), or None when it is not one."""
    blocks = {k.removeprefix("module.").split(".")[1] for k in state if k.removeprefix("module.").startswith("layer1.")}
    return 6 * len(blocks) + 2 if blocks and all(b.isdigit() for b in blocks) else None


def _timm_hf_cache_file(model_name: str) -> Path | None:
    """The weights file of a timm model in the local Hugging Face cache, or None."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(model_name)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        hit = try_to_load_from_cache(repo, filename)
        if isinstance(hit, str):
            return Path(hit)
    return None


def _timm(cfg) -> LoadedModel:
    import timm
    from omegaconf import OmegaConf

    name = cfg.get("name")
    if not name or name == "???":
        raise ValueError("model.name is not set: give a timm model name, e.g. model=timm model.name=resnet18")
    kwargs: dict[str, Any] = {}
    if cfg.get("num_classes") is not None:
        kwargs["num_classes"] = int(cfg.num_classes)
    extra = cfg.get("kwargs") or {}
    if not hasattr(extra, "items"):
        raise ValueError(f"model.kwargs={extra!r} is invalid: need a mapping of timm.create_model arguments")
    extra = OmegaConf.to_container(extra, resolve=True) if OmegaConf.is_config(extra) else dict(extra)
    kwargs.update({str(k): v for k, v in extra.items()})
    try:
        module = timm.create_model(name, pretrained=False, **kwargs)
    except RuntimeError as err:
        raise ValueError(f"model.name={name!r} is not a timm model ({err}); list them with timm.list_models()") from None
    except TypeError as err:
        raise ValueError(f"model.kwargs={extra!r} / model.num_classes are not accepted by timm model {name!r}: {err}") from None
    ckpt = cfg.get("checkpoint")
    if ckpt is not None:
        path = Path(str(ckpt)).expanduser()
        source = f"checkpoint:{path}"
    else:
        path = _timm_hf_cache_file(name)
        if path is None:
            repo = getattr(timm.models.get_pretrained_cfg(name), "hf_hub_id", None) or f"timm/{name}"
            raise ValueError(
                f"no local weights for timm model {name!r}: nothing is downloaded at run time. Either download "
                f"them on a machine with internet (e.g. `huggingface-cli download {repo}`) into the Hugging Face "
                f"cache (~/.cache/huggingface/hub, or $HF_HOME/hub) and copy that cache here, or pass "
                f"model.checkpoint=/path/to/model.safetensors (or .pth)"
            )
        source = f"hf-cache:{path}"
    _load_state(module, _read_state_dict(path), path)
    data_cfg = module.pretrained_cfg if hasattr(module, "pretrained_cfg") else {}
    input_size = tuple(data_cfg.get("input_size", ())) or None
    return LoadedModel(module.eval(), name, source, input_size)


def _python_entry(cfg) -> LoadedModel:
    entry = cfg.get("entry")
    if not entry or ":" not in str(entry):
        raise ValueError(f"model.entry={entry!r} is invalid: need path/to/file.py:function")
    file, _, func = str(entry).rpartition(":")
    path = Path(file).expanduser()
    if not path.is_file():
        raise ValueError(f"model.entry={entry!r}: file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"lpq_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise ValueError(f"model.entry={entry!r}: importing {path} failed: {type(err).__name__}: {err}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ValueError(f"model.entry={entry!r}: {path} has no function {func!r}")
    model = fn()
    if not isinstance(model, nn.Module):
        raise ValueError(f"model.entry={entry!r}: {func}() returned {type(model).__name__}, need a torch.nn.Module")
    size = cfg.get("input_size")
    return LoadedModel(model.eval(), str(cfg.get("name") or f"{path.stem}:{func}"), f"python:{entry}",
                       tuple(size) if size else None)


def _tfjs(cfg) -> LoadedModel:
    from .tfjs_layers import build, model_json_path

    ckpt = cfg.get("checkpoint")
    if ckpt in (None, "", "???"):
        raise ValueError("model=tfjs needs model.checkpoint=PATH: a TensorFlow.js layers model.json, or the folder "
                         "holding it with its groupN-shard1ofM weight files (random weights are never used)")
    path = model_json_path(ckpt)
    module, input_size, _ = build(path)
    pre = cfg.get("preprocess")
    if pre:
        from omegaconf import OmegaConf

        module.lpq_preprocess = OmegaConf.to_container(pre, resolve=True) if OmegaConf.is_config(pre) else dict(pre)
    name = str(cfg.get("name") or path.parent.name)
    return LoadedModel(module, name, f"tfjs:{path}", input_size)


def build_model(cfg) -> LoadedModel:
    """The model named by the `model` config group, weights loaded, in eval mode."""
    kind = cfg.get("kind")
    if kind == "embedded":
        if cfg.get("name") not in EMBEDDED_MODELS:
            raise ValueError(f"model.name={cfg.get('name')!r} is not an embedded model: need one of {', '.join(EMBEDDED_MODELS)}")
        return _embedded(cfg)
    if kind == "timm":
        return _timm(cfg)
    if kind == "python":
        return _python_entry(cfg)
    if kind == "cifar_resnet":
        return _cifar_resnet(cfg)
    if kind == "tfjs":
        return _tfjs(cfg)
    raise ValueError(f"model.kind={kind!r} is invalid: need embedded, timm, cifar_resnet, tfjs or python")
