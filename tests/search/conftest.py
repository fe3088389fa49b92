"""Shared set-up for the LPQ search tests: quiet progress bars, and the embedded models built
once per session (digits_cnn trained with `lpq train`, digits_vit with a seeded random init)."""
from __future__ import annotations

import os

os.environ.setdefault("LPA_PROGRESS", "off")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def cnn_ckpt(tmp_path_factory) -> Path:
    """A trained digits_cnn checkpoint (lpq train, about 5 s)."""
    from lpq.cli import main

    out = tmp_path_factory.mktemp("train_digits_cnn")
    assert main(["train", "model=digits_cnn", f"out_dir={out}"]) == 0
    return out / "model.pt"


@pytest.fixture(scope="session")
def vit_ckpt(tmp_path_factory) -> Path:
    """digits_vit with a seeded random init, saved as a state dict (training is not needed to
    test the search machinery and takes ~17 s)."""
    from lpq.models.embedded import digits_vit

    torch.manual_seed(0)
    model = digits_vit()
    path = tmp_path_factory.mktemp("digits_vit") / "model.pt"
    torch.save(model.state_dict(), path)
    return path
