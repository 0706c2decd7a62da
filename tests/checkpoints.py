"""A checkpoint of a randomly initialised model on the synthetic data's meta, for tests that need a real
checkpoint directory but not a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pixelcam.models import create_wsol_model
from pixelcam.runtime.checkpoint import save_checkpoint


def random_checkpoint(
    path: Path, method: str, seed: int = 0, backbone: str = "resnet10t", **meta: Any
) -> Path:
    """Save `method` on `backbone` (weights drawn with `seed`) at `path`, trained on synth-colon at 64 px
    according to its meta; `meta` overrides or adds fields."""
    torch.manual_seed(seed)
    model = create_wsol_model(method, backbone)
    base = {
        "method": method,
        "backbone": backbone,
        "class_names": ["normal", "cancer"],
        "source": "synth-colon",
        "resize": 64,
        "epoch": 0,
        "tau": 0.5,
        "metrics": {},
        "normalization": model.normalization(),
    }
    return save_checkpoint(path, model, base | meta)
