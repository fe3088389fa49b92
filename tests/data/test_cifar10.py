"""data=cifar10: both on-disk layouts (python batches, image folders), preprocessing bit-identical to
torchvision's ToTensor + Normalize, labels, calibration pool never from the test set, and the errors."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from lpq.data import build_data, calibration_subset
from lpq.data.cifar10 import CLASSES
from lpq.data.cifar10_layout import locate

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _cfg(root, **kw):
    return OmegaConf.create({"kind": "cifar10", "root": str(root), "calib_split": "auto", "mean": MEAN, "std": STD,
                             "num_workers": 0, **kw})


def _batch(path, n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    with open(path, "wb") as fh:
        pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, fh)
    return data.reshape(n, 3, 32, 32), labels


@pytest.fixture
def python_root(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    test = _batch(d / "test_batch", 12, 0)
    train = [_batch(d / f"data_batch_{i}", 5, i) for i in (1, 2)]
    return tmp_path, test, train


def _torchvision(img_hwc: np.ndarray) -> torch.Tensor:
    from torchvision import transforms

    t = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    return t(Image.fromarray(img_hwc))


def test_python_batches(python_root):
    root, (timgs, tlabels), train = python_root
    for r in (root, root / "cifar-10-batches-py"):  # the folder or the one holding it
        data = build_data(_cfg(r))
        assert len(data.val) == 12 and len(data.calib) == 10 and data.num_classes == 10
        assert data.labels == "cifar10" and data.source.startswith("cifar10:python:")
        for i in (0, 7, 11):
            x, y = data.val[i]
            assert y == tlabels[i]
            assert torch.equal(x, _torchvision(timgs[i].transpose(1, 2, 0)))  # bit-identical
        x, y = data.calib[6]  # second training batch, item 1
        assert y == train[1][1][1] and torch.equal(x, _torchvision(train[1][0][1].transpose(1, 2, 0)))
        assert not set(data.val_ids) & set(data.calib_ids)
        sub, ids = calibration_subset(data, 4, 0)
        assert len(sub) == 4 and all("data_batch_" in i for i in ids)


@pytest.fixture
def folder_root(tmp_path):
    rng = np.random.default_rng(3)
    imgs = {}
    for split, n in (("test", 2), ("train", 3)):
        for c in CLASSES[:3]:
            (tmp_path / split / c).mkdir(parents=True)
            for k in range(n):
                arr = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                Image.fromarray(arr).save(tmp_path / split / c / f"{k:04d}.png")  # lossless
                imgs[(split, c, k)] = arr
    return tmp_path, imgs


def test_image_folders(folder_root):
    root, imgs = folder_root
    data = build_data(_cfg(root))
    assert len(data.val) == 6 and len(data.calib) == 9
    for i, (c, k) in enumerate((c, k) for c in sorted(CLASSES[:3]) for k in range(2)):
        x, y = data.val[i]
        assert y == CLASSES.index(c), "label = CIFAR-10 class index of the folder name"
        assert torch.equal(x, _torchvision(imgs[("test", c, k)]))
        assert data.val_ids[i].endswith(f"{c}/{k:04d}.png")
    assert all("/train/" in i for i in data.calib_ids)


def test_calib_folder_wins_over_train(folder_root):
    root, _ = folder_root
    (root / "calib" / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "calib" / "cat" / "0.png")
    assert locate(str(root))[2].name == "calib"
    assert locate(str(root), "train")[2].name == "train"
    data = build_data(_cfg(root))
    assert len(data.calib) == 1 and data.calib[0][1] == CLASSES.index("cat")


def test_layout_errors(tmp_path, folder_root):
    with pytest.raises(ValueError, match="data.root is not set"):
        locate("???")
    with pytest.raises(ValueError, match="does not exist"):
        locate(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="expected either the python batches .* test/<class>/ with calib/<class>/ or "
                                         "train/<class>/"):
        locate(str(tmp_path / "empty"))
    (tmp_path / "only_test" / "test").mkdir(parents=True)  # test images alone: no calibration pool
    with pytest.raises(ValueError, match="not a CIFAR-10 folder"):
        locate(str(tmp_path / "only_test"))
    with pytest.raises(ValueError, match="data.calib_split='val' is invalid"):
        locate(str(tmp_path), "val")


def test_bad_images_and_classes(tmp_path):
    for split in ("test", "train"):
        (tmp_path / split / "cat").mkdir(parents=True)
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / split / "cat" / "0.png")
    (tmp_path / "test" / "cat" / "big.png").unlink(missing_ok=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "test" / "cat" / "big.png")
    with pytest.raises(ValueError, match="64x64, CIFAR-10 images are 32x32"):
        build_data(_cfg(tmp_path))
    (tmp_path / "test" / "cat" / "big.png").unlink()
    (tmp_path / "test" / "zebra").mkdir()
    with pytest.raises(ValueError, match="one folder per CIFAR-10 class.*zebra"):
        build_data(_cfg(tmp_path))


def test_python_batches_need_training_batches(tmp_path):
    _batch(tmp_path / "test_batch", 3, 0)
    with pytest.raises(ValueError, match="no data_batch_1"):
        build_data(_cfg(tmp_path))


def test_corrupt_batch(tmp_path):
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    _batch(tmp_path / "data_batch_1", 2, 1)
    with pytest.raises(ValueError, match="is not a CIFAR-10 python batch"):
        build_data(_cfg(tmp_path))


def test_config_group_composes():
    from lpq.cli import compose

    cfg = compose(["data=cifar10", "data.root=/x", "out_dir=y"])
    assert cfg.data.kind == "cifar10" and list(cfg.data.mean) == MEAN and list(cfg.data.std) == STD
