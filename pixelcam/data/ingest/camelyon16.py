"""CAMELYON16 512x512 patch benchmark in the public "WSOL done right" fold layout (`ingest/folds.py`).

`--folds DIR` holds `train/ [valcl/] [valpx/] test/` as published; paths are relative to `--root`. Normal
patches carry no ROI (their mask is all background); tumour patches in valpx/test need their mask. A fold
without valpx gets 6 pixel-labelled images per class drawn from valcl by the seed (they stay in valcl).
"""

from __future__ import annotations

from pathlib import Path

from pixelcam.data.ingest.folds import Folds, read_folds

CLASS_NAMES = ["normal", "tumor"]
ROI_CLASSES = ["tumor"]  # normal patches have no ROI


def camelyon16_folds(root: Path, folds: Path, seed: int = 0, valpx_per_class: int = 6) -> Folds:
    """The fold's entries with splits, declared sizes, class names (from encoding.yaml) and notes."""
    return read_folds(root, folds, CLASS_NAMES, ROI_CLASSES, seed=seed, valpx_per_class=valpx_per_class)
