"""Data (LPQ §6, PIPELINE §9): the embedded digits split, ImageNet-style folders, and a
calibration subset that never overlaps the evaluation set."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lpq.data import EvalData, build_data, calibration_subset
from lpq.data.embedded import SPLIT_SIZES, digits_split

# ---- embedded digits ----------------------------------------------------------------------------


def test_digits_split_sizes_disjoint_and_complete():
    splits = {s: digits_split(s) for s in ("train", "calib", "val")}
    assert {s: len(d) for s, d in splits.items()} == SPLIT_SIZES == {"train": 1097, "calib": 300, "val": 400}
    ids = {s: set(d.ids) for s, d in splits.items()}
    assert all(len(ids[s]) == len(splits[s]) for s in splits)
    assert not ids["train"] & ids["calib"] and not ids["train"] & ids["val"] and not ids["calib"] & ids["val"]
    assert len(ids["train"] | ids["calib"] | ids["val"]) == 1797
    for d in splits.values():
        assert d.images.shape[1:] == (1, 8, 8) and d.images.dtype == torch.float32
        assert float(d.images.min()) >= -1.0 and float(d.images.max()) <= 1.0
        assert set(d.labels.tolist()) == set(range(10))
    again = digits_split("val")
    assert again.ids == splits["val"].ids and torch.equal(again.images, splits["val"].images)


def test_digits_split_unknown():
    with pytest.raises(ValueError, match="split='test'"):
        digits_split("test")


def test_embedded_calibration_subset():
    data = build_data(OmegaConf.create({"kind": "embedded"}))
    assert data.num_classes == 10 and data.source.startswith("embedded")
    assert not set(data.calib_ids) & set(data.val_ids)
    subset, ids = calibration_subset(data, 64, seed=0)
    assert len(subset) == 64 == len(ids) == len(set(ids))
    assert set(ids) <= set(data.calib_ids) and not set(ids) & set(data.val_ids)
    assert list(subset.indices) == sorted(subset.indices)  # index order
    assert [data.calib_ids[i] for i in subset.indices] == ids
    assert calibration_subset(data, 64, seed=0)[1] == ids
    assert calibration_subset(data, 64, seed=1)[1] != ids
    assert len(calibration_subset(data, 300, seed=0)[1]) == 300


@pytest.mark.parametrize("n", [0, 301, -1])
def test_calibration_subset_size_errors(n):
    data = build_data(OmegaConf.create({"kind": "embedded"}))
    with pytest.raises(ValueError, match=f"calib.num_samples={n}"):
        calibration_subset(data, n, seed=0)


def test_calibration_subset_refuses_overlap():
    ds = digits_split("calib")
    ids = list(ds.ids)
    data = EvalData(val=ds, calib=ds, val_ids=ids[:5], calib_ids=ids, num_classes=10, source="t")
    with pytest.raises(ValueError, match="overlap"):
        calibration_subset(data, 300, seed=0)


def test_unknown_data_kind():
    with pytest.raises(ValueError, match="data.kind='lmdb'"):
        build_data(OmegaConf.create({"kind": "lmdb"}))


# ---- ImageNet-style folders -----------------------------------------------------------------


def _png_tree(root, classes: dict[str, int], size=(10, 12), seed: int = 0):
    """root/<class>/<i>.png, size = (W, H); returns {relative path: uint8 array}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    arrays = {}
    for cls, count in classes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"img{i}.png")
            arrays[f"{cls}/img{i}.png"] = arr
    return arrays


def _cfg(val_root, calib_root, **over):
    base = {"kind": "imagefolder", "val_root": None if val_root is None else str(val_root),
            "calib_root": None if calib_root is None else str(calib_root), "resize": None,
            "crop": None, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "interpolation": "bilinear"}
    base.update(over)
    return OmegaConf.create(base)


@pytest.fixture
def folders(tmp_path):
    val = tmp_path / "val"
    calib = tmp_path / "train"
    arrays = _png_tree(val, {"zebra": 2, "ant": 3, "moth": 1})
    _png_tree(calib, {"zebra": 2, "ant": 2, "moth": 2}, seed=1)
    return val, calib, arrays


def test_imagefolder_classes_sorted_and_pixels(folders):
    val, calib, arrays = folders
    data = build_data(_cfg(val, calib))
    assert data.val.classes == ["ant", "moth", "zebra"] and data.num_classes == 3
    assert data.source == f"imagefolder:{val}"
    assert len(data.val) == 6 and len(data.calib) == 6
    for (path, label), sid in zip(data.val.samples, data.val_ids):
        rel = str(path)[len(str(val)) + 1:]
        assert data.val.classes[label] == rel.split("/")[0]
        assert sid == f"{val.resolve()}/{rel}"
    img, label = data.val[0]
    assert img.shape == (3, 12, 10)  # resize/crop null: native H x W
    rel = str(data.val.samples[0][0])[len(str(val)) + 1:]
    want = torch.from_numpy(arrays[rel]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(img, want)
    assert not set(data.val_ids) & set(data.calib_ids)
    _, ids = calibration_subset(data, 4, seed=0)
    assert set(ids) <= set(data.calib_ids)


def test_imagefolder_resize_crop_and_normalize(folders):
    val, calib, _ = folders
    data = build_data(_cfg(val, calib, resize=8, crop=6, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5],
                           interpolation="bicubic"))
    img, _ = data.val[0]
    assert img.shape == (3, 6, 6)
    assert float(img.min()) >= -1.0 - 1e-6 and float(img.max()) <= 1.0 + 1e-6


def test_imagefolder_same_root_overlap_detected(folders):
    val, _, _ = folders
    data = build_data(_cfg(val, val))
    with pytest.raises(ValueError, match="overlap.*disjoint folders"):
        calibration_subset(data, 6, seed=0)


def test_imagefolder_symlinked_root_overlap_detected(folders, tmp_path):
    val, _, _ = folders
    link = tmp_path / "val_link"
    link.symlink_to(val, target_is_directory=True)
    data = build_data(_cfg(val, link))
    with pytest.raises(ValueError, match="overlap"):
        calibration_subset(data, 6, seed=0)


@pytest.mark.parametrize("which", ["val_root", "calib_root"])
def test_imagefolder_missing_root(folders, tmp_path, which):
    val, calib, _ = folders
    roots = {"val_root": val, "calib_root": calib, which: tmp_path / "does_not_exist"}
    with pytest.raises(ValueError, match=f"data.{which}=.*does not exist"):
        build_data(_cfg(roots["val_root"], roots["calib_root"]))


@pytest.mark.parametrize("value", [None, "", "???"])
def test_imagefolder_unset_root(folders, value):
    _, calib, _ = folders
    with pytest.raises(ValueError, match="data.val_root is not set"):
        build_data(_cfg(value, calib))


def test_imagefolder_empty_roots(folders, tmp_path):
    _, calib, _ = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        build_data(_cfg(empty, calib))
    (empty / "cat").mkdir()
    (empty / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="no images"):
        build_data(_cfg(empty, calib))
    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a directory"):
        build_data(_cfg(a_file, calib))


def test_imagefolder_bad_interpolation(folders):
    val, calib, _ = folders
    with pytest.raises(ValueError, match="data.interpolation='cubic'"):
        build_data(_cfg(val, calib, interpolation="cubic"))


def test_imagefolder_from_hydra_config_group(folders):
    """conf/data/imagefolder.yaml composes and builds (defaults: resize 256, crop 224)."""
    from lpq.cli import compose

    val, calib, _ = folders
    cfg = compose(["data=imagefolder", f"data.val_root={val}", f"data.calib_root={calib}",
                   "data.resize=16", "data.crop=12"])
    assert cfg.data.interpolation == "bilinear" and list(cfg.data.mean) == [0.485, 0.456, 0.406]
    data = build_data(cfg.data)
    assert data.val[0][0].shape == (3, 12, 12)
    defaults = compose(["data=imagefolder"])
    assert defaults.data.resize == 256 and defaults.data.crop == 224


# ---- class labels of validation folders (data.labels) ------------------------------------------------------------
def test_imagenet_wnids_are_the_sorted_imagenet_1k_synsets():
    """ImageNet-1k's class index is the sorted order of its 1000 WordNet IDs (torchvision's ImageFolder on the full
    set); timm's copy must agree, since folder subsets are mapped through it."""
    from lpq.data.datasets import imagenet_wnids

    wnids = imagenet_wnids()
    assert len(wnids) == len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    assert wnids[0] == "n01440764" and wnids[1] == "n01443537" and wnids[999] == "n15075141"


@pytest.mark.parametrize("classes,mode,expected,resolved", [
    (["n01443537", "n01484850", "n15075141"], "auto", [1, 2, 999], "imagenet"),   # a subset of ImageNet-1k
    (["n01443537", "n01484850"], "imagenet", [1, 2], "imagenet"),
    (["n01443537", "n01484850"], "folder", [0, 1], "folder"),
    (["0", "10", "2", "999"], "auto", [0, 10, 2, 999], "index"),                 # ImageNetV2: folder = index
    (["0", "10", "2"], "folder", [0, 1, 2], "folder"),                           # lexicographic position
    (["ant", "moth", "zebra"], "auto", [0, 1, 2], "folder"),
    (["n01443537", "n99999999"], "auto", [0, 1], "folder"),                      # not all ImageNet-1k IDs
    (["n01443537", "cat"], "auto", [0, 1], "folder"),
])
def test_folder_labels(classes, mode, expected, resolved):
    from lpq.data.datasets import folder_labels

    mapping, got = folder_labels(classes, mode)
    assert [mapping[c] for c in classes] == expected and got == resolved


@pytest.mark.parametrize("classes,mode,match", [
    (["ant"], "wordnet", "data.labels='wordnet' is invalid: need one of auto, folder, imagenet, index"),
    (["n01443537", "cat"], "imagenet", "data.labels=imagenet needs ImageNet-1k WordNet-ID .*found cat"),
    (["n99999999"], "imagenet", "found n99999999"),
    (["0", "x1"], "index", "data.labels=index needs integer class folder names .*found x1"),
])
def test_folder_labels_errors(classes, mode, match):
    from lpq.data.datasets import folder_labels

    with pytest.raises(ValueError, match=match):
        folder_labels(classes, mode)


def test_imagefolder_wnid_subset_gets_imagenet_labels(tmp_path):
    """A validation folder holding only some ImageNet classes keeps the labels a 1000-class model predicts."""
    val, calib = tmp_path / "val", tmp_path / "train"
    _png_tree(val, {"n01484850": 2, "n01443537": 1})
    _png_tree(calib, {"n01484850": 2, "n01443537": 2}, seed=1)
    data = build_data(_cfg(val, calib))
    assert data.labels == "imagenet"
    got = sorted((str(p).split("/")[-2], label) for p, label in data.val.samples)
    assert got == [("n01443537", 1), ("n01484850", 2), ("n01484850", 2)]
    assert sorted(int(data.val[i][1]) for i in range(3)) == [1, 2, 2]
    assert data.val.targets == [label for _, label in data.val.samples]
    assert build_data(_cfg(val, calib, labels="folder")).val.targets == [0, 1, 1]


def test_digits_arrays_equal_sklearn_load_digits():
    """The embedded loader reads scikit-learn's data file directly (no sklearn import): same values and order."""
    from sklearn.datasets import load_digits

    from lpq.data.embedded import _digits_arrays

    ref = load_digits()
    images, labels = _digits_arrays()
    assert images.shape == ref.images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(images, ref.images)
    np.testing.assert_array_equal(labels, ref.target)


# ---- per-model preprocessing (data.preprocess) --------------------------------------------------------------------
@pytest.mark.parametrize("name,expected", [
    # timm's default tags: resnet18.a1_in1k crop_pct 0.95; vit augreg mean/std 0.5, crop_pct 0.9; deit 0.9
    ("resnet18", {"resize": 235, "crop": 224, "interpolation": "bicubic", "mean": [0.485, 0.456, 0.406]}),
    ("vit_base_patch16_224", {"resize": 248, "crop": 224, "interpolation": "bicubic", "mean": [0.5, 0.5, 0.5],
                              "std": [0.5, 0.5, 0.5]}),
    ("mobilenetv2_100", {"resize": 256, "crop": 224}),
])
def test_preprocess_from_timm_pretrained_cfg(folders, name, expected):
    timm = pytest.importorskip("timm")
    from lpq.data import resolve_data_cfg

    val, calib, _ = folders
    with torch.device("meta"):
        module = timm.create_model(name, pretrained=False)
    data = resolve_data_cfg(_cfg(val, calib, preprocess="model"), module)
    for k, v in expected.items():
        assert (list(data[k]) if isinstance(v, list) else data[k]) == pytest.approx(v) if isinstance(v, list) \
            else data[k] == v, (k, data[k])
    assert data.preprocess_source == "model.pretrained_cfg"
    kept = resolve_data_cfg(_cfg(val, calib, preprocess="config", resize=32, crop=16), module)
    assert kept.resize == 32 and kept.crop == 16 and kept.interpolation == "bilinear"
    assert kept.preprocess_source == "data config"


def test_preprocess_without_pretrained_cfg_keeps_config(folders):
    from lpq.data import resolve_data_cfg

    val, calib, _ = folders
    data = resolve_data_cfg(_cfg(val, calib, resize=20), torch.nn.Linear(2, 2))
    assert data.resize == 20 and data.preprocess_source == "data config"
    emb = resolve_data_cfg(OmegaConf.create({"kind": "embedded"}), torch.nn.Linear(2, 2))
    assert emb.kind == "embedded" and "preprocess_source" not in emb


def test_preprocess_bad_value(folders):
    from lpq.data import resolve_data_cfg

    val, calib, _ = folders
    with pytest.raises(ValueError, match="data.preprocess='auto' is invalid"):
        resolve_data_cfg(_cfg(val, calib, preprocess="auto"), torch.nn.Linear(2, 2))


# ---- data.split_every and data.rounding ----------------------------------------------------------


def test_split_every_takes_class_disjoint_calibration_from_the_validation_root(tmp_path):
    """data.split_every=K: class folders 0, K, 2K, ... (sorted) are the calibration pool, the rest validation;
    labels keep the ImageNet index of each WordNet-ID folder (the pack's imagenet_sample500 case)."""
    from lpq.data.datasets import imagenet_wnids

    wnids = list(imagenet_wnids()[0:20:2])  # 10 classes with even ImageNet index, like the pack
    root = tmp_path / "sample"
    _png_tree(root, {w: 1 + (i % 2) for i, w in enumerate(wnids)})
    data = build_data(_cfg(root, None, split_every=5))
    calib_classes = {p.split("/")[-2] for p in data.calib_ids}
    val_classes = {p.split("/")[-2] for p in data.val_ids}
    assert calib_classes == {wnids[0], wnids[5]} and not calib_classes & val_classes
    assert len(data.calib_ids) + len(data.val_ids) == 15 and len(data.calib) == len(data.calib_ids)
    assert data.num_classes == 8 and data.labels == "imagenet"
    assert sorted(set(data.val.targets)) == [2 * i for i in (1, 2, 3, 4, 6, 7, 8, 9)]
    assert [int(data.val[i][1]) for i in range(len(data.val))] == data.val.targets
    subset, ids = calibration_subset(data, 3, seed=0)  # never overlaps validation
    assert len(ids) == 3 and not set(ids) & set(data.val_ids)


@pytest.mark.parametrize("value, match", [(1, "need an integer >= 2"), (True, "need an integer >= 2"),
                                          (11, "has only 10 class folders")])
def test_split_every_errors(tmp_path, value, match):
    root = tmp_path / "sample"
    _png_tree(root, {f"c{i:02d}": 1 for i in range(10)})
    with pytest.raises(ValueError, match=match):
        build_data(_cfg(root, None, split_every=value))


def test_split_every_refuses_a_calib_root_too(folders):
    val, calib, _ = folders
    with pytest.raises(ValueError, match="leave data.calib_root unset"):
        build_data(_cfg(val, calib, split_every=2))


@pytest.mark.parametrize("size", [(37, 23), (23, 37), (300, 200), (201, 301)])
def test_round_floor_geometry(tmp_path, size):
    """data.rounding=round_floor: shorter side -> resize, longer side round(long * resize / short) (PIL bilinear),
    then the crop with corner floor((w - crop) / 2), floor((h - crop) / 2), as the pack README's MobileNet
    preprocessing describes; checked against PIL calls written out here."""
    from PIL import Image

    root = tmp_path / "v"
    arrays = _png_tree(root, {"a": 1}, size=size)
    arr = next(iter(arrays.values()))
    resize, crop = 16, 14
    data = build_data(_cfg(root, root, resize=resize, crop=crop, rounding="round_floor"))
    w, h = size
    new = (resize, round(h * resize / w)) if w <= h else (round(w * resize / h), resize)
    img = Image.fromarray(arr).resize(new, Image.BILINEAR)
    left, top = (new[0] - crop) // 2, (new[1] - crop) // 2
    ref = np.asarray(img.crop((left, top, left + crop, top + crop)), dtype=np.float32) / 255.0
    got = data.val[0][0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_rounding_bad_value(folders):
    val, calib, _ = folders
    with pytest.raises(ValueError, match="data.rounding='up' is invalid"):
        build_data(_cfg(val, calib, rounding="up"))
