"""Shared set-up for the post-training-quantization tests: quiet progress, small thread count."""
from __future__ import annotations

import os

os.environ.setdefault("LPA_PROGRESS", "off")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def cnn_ckpt(tmp_path_factory):
    """A trained digits_cnn checkpoint (lpq train, about 5 s): the reconstruction tests need real weights."""
    from lpq.cli import main

    out = tmp_path_factory.mktemp("train_digits_cnn")
    assert main(["train", "model=digits_cnn", f"out_dir={out}"]) == 0
    return out / "model.pt"
