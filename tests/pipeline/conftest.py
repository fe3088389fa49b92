"""Fixtures for the workflow layer: a fake results tree and a migrated MLflow SQLite template (PIPELINE §5.4)."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _write(p: Path, obj) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)


def _env(p: Path, rule: str, job: str, digest: str = "d0") -> None:
    _write(p / "env.json", {"rule": rule, "job": job, "cfg_digest": digest, "overrides": [], "versions": {}, "git": {}})


@pytest.fixture
def fake_results(tmp_path) -> Path:
    """results/demo with two models, FP32 references, searched and uniform rows, and two hwsim designs."""
    root = tmp_path / "results" / "demo"
    for model, fp in (("m1", 90.0), ("m2", 80.0)):
        d = root / f"eval/{model}/none/fp32/w32a32/s0"
        _write(d / "metrics.json", {"top1": fp, "avg_w_bits": None, "avg_a_bits": None, "compression": None})
        _env(d, "evaluate", f"evaluate/model={model}/method=none/fmt=fp32/wa=w32a32/seed=0")
        for fmt, acc in (("lp", 2.0), ("int", 3.0)):
            for method, seeds in (("lpq", (0, 1)), ("none", (0,))):
                for s in seeds:
                    d = root / f"eval/{model}/{method}/{fmt}/w4a4/s{s}"
                    _write(d / "metrics.json", {"top1": fp - acc - s, "avg_w_bits": 4.0, "avg_a_bits": 4.0,
                                                "compression": 8.0, "weights_source": "x", "data_source": "y"})
                    _write(d / "qconfig.json", {"layers": {"fc": {"w": f"{fmt}<4>", "a": f"{fmt}<4>"}}})
                    _env(d, "evaluate", f"evaluate/model={model}/method={method}/fmt={fmt}/wa=w4a4/seed={s}")
        d = root / f"search/{model}/lp/w4a4/s0"
        _write(d / "search.json", {"fitness": 1.5, "evaluations": 10, "layers": {"fc": {"P": 1}}})
        _write(d / "qconfig.json", {"layers": {"conv": {"w": "lp<4,1,2,0>", "a": "lp<3,1,1,0>"}}})
        _write(d / "search_log.csv", "generation,best_fitness,mean_fitness,avg_w_bits,avg_a_bits,evaluations,seconds\n"
                                     "0,2.0,3.0,4,4,5,0.1\n1,1.5,2.5,4,4,10,0.2\n")
        _env(d, "search", f"search/model={model}/fmt=lp/wa=w4a4/seed=0")
        for design, ppa, eff in (("ant", 10.0, 1.0), ("lpa", 20.0, 1.5)):
            d = root / f"hw/default28/{model}/{design}/w4a4/s0"
            _write(d / "summary.json", {"perf_per_area_gops_mm2": ppa, "tops_per_w": eff, "gops": 100.0,
                                        "norm": {"ant": {"speedup": 1.0}}})
            _env(d, "hwsim", f"hwsim/profile=default28/model={model}/design={design}/wa=w4a4/seed=0")
    return root


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """One empty, migrated SQLite DB per pytest run (a fresh DB costs ~1 s of migrations)."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def mlflow_db(tmp_path, mlflow_template, monkeypatch) -> str:
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri
    import mlflow

    if mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


PAPER_MODELS = ("resnet18", "resnet50", "mobilenetv2_100", "vit_base_patch16_224", "deit_small_patch16_224",
                "swin_tiny_patch4_window7_224")


@pytest.fixture
def fake_assets(tmp_path, monkeypatch) -> Path:
    """Tiny stand-in files for the paper experiment's images and weights (existence is all the check reads)."""
    base = tmp_path / "assets"
    for split in ("val", "train"):
        (base / "imagenet" / split / "n01440764").mkdir(parents=True)
        (base / "imagenet" / split / "n01440764" / "x.JPEG").write_bytes(b"stand-in")
    (base / "weights").mkdir()
    for m in PAPER_MODELS:
        (base / "weights" / f"{m}.safetensors").write_bytes(b"stand-in")
    monkeypatch.setenv("LPA_IMAGENET", str(base / "imagenet"))
    monkeypatch.setenv("LPA_WEIGHTS_DIR", str(base / "weights"))
    return base
