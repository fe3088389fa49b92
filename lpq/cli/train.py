"""`lpq train`: train an embedded model (digits_cnn, digits_vit) on the embedded digits; out_dir/model.pt."""
from __future__ import annotations

from pathlib import Path


def run(cfg, out_dir: Path, overrides: list[str]) -> None:
    from ..models.train import train_embedded

    if cfg.model.get("kind") != "embedded":
        raise ValueError("lpq train trains the embedded models only (model=digits_cnn or model=digits_vit), "
                         f"got model.kind={cfg.model.get('kind')!r}")
    train_embedded(cfg.model.name, out_dir, seed=int(cfg.seed))
