"""Model providers (PIPELINE §9): embedded models from a checkpoint, timm models from a
checkpoint or the local Hugging Face cache only, a user's Python entry point, with errors
that name the problem and what to do."""
from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from lpq.models import build_model
from lpq.models import providers
from lpq.models.embedded import digits_cnn, digits_vit

TIMM_NAME = "test_resnet"  # a tiny timm architecture (random init is enough here)


def _cfg(**kw):
    return OmegaConf.create(kw)


@pytest.fixture(scope="module")
def cnn_state():
    torch.manual_seed(0)
    return digits_cnn().state_dict()


# ---- embedded -----------------------------------------------------------------------------------

def test_embedded_from_checkpoint_formats(tmp_path, cnn_state):
    from safetensors.torch import save_file

    x = torch.randn(2, 1, 8, 8)
    ref = digits_cnn()
    ref.load_state_dict(cnn_state)
    ref.eval()
    variants = {
        "plain.pt": cnn_state,
        "nested.pth": {"state_dict": cnn_state, "epoch": 3},
        "ddp.pt": {f"module.{k}": v for k, v in cnn_state.items()},
    }
    for name, obj in variants.items():
        torch.save(obj, tmp_path / name)
    save_file({k: v.contiguous() for k, v in cnn_state.items()}, str(tmp_path / "w.safetensors"))
    for name in [*variants, "w.safetensors"]:
        loaded = build_model(_cfg(kind="embedded", name="digits_cnn", checkpoint=str(tmp_path / name)))
        assert loaded.name == "digits_cnn" and loaded.input_size == (1, 8, 8)
        assert loaded.weights_source == f"checkpoint:{tmp_path / name}"
        assert not loaded.module.training
        with torch.no_grad():
            assert torch.equal(loaded.module(x), ref(x)), name


def test_embedded_without_checkpoint_says_how_to_train():
    with pytest.raises(ValueError, match=r"model=digits_vit needs trained weights.*lpq train model=digits_vit"):
        build_model(_cfg(kind="embedded", name="digits_vit", checkpoint=None))


def test_embedded_missing_checkpoint(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(ValueError, match=f"model.checkpoint={path} does not exist"):
        build_model(_cfg(kind="embedded", name="digits_cnn", checkpoint=str(path)))


@pytest.mark.parametrize("fname", ["garbage.pt", "garbage.safetensors"])
def test_corrupt_checkpoint(tmp_path, fname):
    path = tmp_path / fname
    path.write_bytes(b"\x00\x01not a checkpoint\xff" * 50)
    with pytest.raises(ValueError, match=f"model.checkpoint={path} could not be read"):
        build_model(_cfg(kind="embedded", name="digits_cnn", checkpoint=str(path)))


def test_truncated_checkpoint(tmp_path, cnn_state):
    path = tmp_path / "cut.pt"
    torch.save(cnn_state, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match="could not be read"):
        build_model(_cfg(kind="embedded", name="digits_cnn", checkpoint=str(path)))


def test_checkpoint_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="does not hold a state dict of tensors"):
        build_model(_cfg(kind="embedded", name="digits_cnn", checkpoint=str(path)))


def test_checkpoint_of_another_model(tmp_path):
    path = tmp_path / "vit.pt"
    torch.save(digits_vit().state_dict(), path)
    with pytest.raises(ValueError, match="does not fit the model: missing keys"):
        build_model(_cfg(kind="embedded", name="digits_cnn", checkpoint=str(path)))


def test_checkpoint_wrong_shapes(tmp_path, cnn_state):
    bad = dict(cnn_state)
    bad["fc.weight"] = torch.zeros(3, 3)
    path = tmp_path / "shape.pt"
    torch.save(bad, path)
    with pytest.raises(ValueError, match="does not fit the model"):
        build_model(_cfg(kind="embedded", name="digits_cnn", checkpoint=str(path)))


def test_unknown_embedded_name_and_kind():
    with pytest.raises(ValueError, match="model.name='lenet' is not an embedded model.*digits_cnn"):
        build_model(_cfg(kind="embedded", name="lenet", checkpoint=None))
    with pytest.raises(ValueError, match="model.kind='onnx' is invalid"):
        build_model(_cfg(kind="onnx"))


# ---- timm ---------------------------------------------------------------------------------------

def _timm_state():
    import timm

    torch.manual_seed(1)
    return timm.create_model(TIMM_NAME, pretrained=False).state_dict()


def test_timm_no_local_weights(tmp_path, monkeypatch):
    """An empty Hugging Face cache: the error names the repository and where to put it."""
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert providers._timm_hf_cache_file(TIMM_NAME) is None
    with pytest.raises(ValueError, match=f"no local weights for timm model '{TIMM_NAME}'") as err:
        build_model(_cfg(kind="timm", name=TIMM_NAME, checkpoint=None, num_classes=None))
    msg = str(err.value)
    assert "timm/test_resnet.r160_in1k" in msg and "model.checkpoint=" in msg and "HF_HOME" in msg


def test_timm_from_local_hf_cache(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    import huggingface_hub.constants as hfc

    state = _timm_state()
    snap = tmp_path / "hub" / "models--timm--test_resnet.r160_in1k" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = build_model(_cfg(kind="timm", name=TIMM_NAME, checkpoint=None, num_classes=None))
    assert loaded.weights_source == f"hf-cache:{snap / 'model.safetensors'}"
    assert loaded.input_size == (3, 160, 160) and not loaded.module.training
    for k, v in loaded.module.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_timm_from_checkpoint_and_num_classes(tmp_path):
    import timm

    torch.manual_seed(2)
    model = timm.create_model(TIMM_NAME, pretrained=False, num_classes=7)
    path = tmp_path / "r.pth"
    torch.save(model.state_dict(), path)
    loaded = build_model(_cfg(kind="timm", name=TIMM_NAME, checkpoint=str(path), num_classes=7))
    assert loaded.weights_source == f"checkpoint:{path}"
    with torch.no_grad():
        x = torch.randn(1, 3, 32, 32)
        assert torch.equal(loaded.module(x), model.eval()(x))
    with pytest.raises(ValueError, match="does not fit"):  # 1000-class default vs 7-class weights
        build_model(_cfg(kind="timm", name=TIMM_NAME, checkpoint=str(path), num_classes=None))


def test_timm_kwargs_reach_create_model(tmp_path):
    """model.kwargs: further timm.create_model arguments (a 1-channel ViT on 8x8 inputs here)."""
    import timm

    kw = {"in_chans": 1, "img_size": 8, "patch_size": 2}
    torch.manual_seed(3)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, depth=2, **kw)
    path = tmp_path / "v.pth"
    torch.save(model.state_dict(), path)
    loaded = build_model(_cfg(kind="timm", name="vit_tiny_patch16_224", checkpoint=str(path), num_classes=10,
                              kwargs={**kw, "depth": 2}))
    with torch.no_grad():
        x = torch.randn(2, 1, 8, 8)
        assert torch.equal(loaded.module(x), model.eval()(x))
    with pytest.raises(ValueError, match="model.kwargs=.* is invalid"):
        build_model(_cfg(kind="timm", name=TIMM_NAME, checkpoint=str(path), kwargs=3))
    with pytest.raises(ValueError, match="not accepted by timm model"):
        build_model(_cfg(kind="timm", name=TIMM_NAME, checkpoint=str(path), kwargs={"no_such_argument": 1}))


def test_timm_kwargs_from_the_command_line():
    """`model=timm 'model.kwargs={in_chans:1,img_size:8}'` composes (kwargs defaults to null)."""
    from lpq.cli import compose

    cfg = compose(["model=timm", "model.name=vit_tiny_patch16_224", "model.kwargs={in_chans:1,img_size:8,patch_size:2}"])
    assert dict(cfg.model.kwargs) == {"in_chans": 1, "img_size": 8, "patch_size": 2}
    assert compose(["model=timm", "model.name=resnet18"]).model.kwargs is None


def test_timm_bad_names():
    with pytest.raises(ValueError, match="model.name is not set"):
        build_model(_cfg(kind="timm", name="???", checkpoint=None))
    with pytest.raises(ValueError, match="model.name='no_such_net_xyz' is not a timm model"):
        build_model(_cfg(kind="timm", name="no_such_net_xyz", checkpoint=None))


# ---- python entry point ---------------------------------------------------------------------------

ENTRY = """
import torch
from torch import nn

def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)).train()

def not_a_module():
    return 42

VALUE = 3
"""


def test_python_entry(tmp_path):
    f = tmp_path / "mymodels.py"
    f.write_text(ENTRY)
    loaded = build_model(_cfg(kind="python", entry=f"{f}:build", name=None, input_size=None))
    assert loaded.name == "mymodels:build" and loaded.weights_source == f"python:{f}:build"
    assert loaded.input_size is None and not loaded.module.training
    named = build_model(_cfg(kind="python", entry=f"{f}:build", name="mine", input_size=[1, 8, 8]))
    assert named.name == "mine" and named.input_size == (1, 8, 8)


@pytest.mark.parametrize("entry, match", [
    (None, "model.entry=None is invalid: need path/to/file.py:function"),
    ("???", "need path/to/file.py:function"),
    ("mymodels.py", "need path/to/file.py:function"),
    ("{d}/missing.py:build", "file {d}/missing.py does not exist"),
    ("{d}/mymodels.py:nothing", "has no function 'nothing'"),
    ("{d}/mymodels.py:VALUE", "has no function 'VALUE'"),
    ("{d}/mymodels.py:not_a_module", "returned int, need a torch.nn.Module"),
    ("{d}/broken.py:build", "importing .*broken.py failed: SyntaxError"),
])
def test_python_entry_errors(tmp_path, entry, match):
    (tmp_path / "mymodels.py").write_text(ENTRY)
    (tmp_path / "broken.py").write_text("def build(:\n")
    entry = entry.format(d=tmp_path) if entry else entry
    with pytest.raises(ValueError, match=match.format(d=tmp_path)):
        build_model(_cfg(kind="python", entry=entry, name=None, input_size=None))
