"""Shared set-up for the post-training-quantization tests: quiet progress, small thread count."""
from __future__ import annotations

import os

os.environ.setdefault("LPA_PROGRESS", "off")
