"""CAMELYON16 512x512 patch benchmark in the "WSOL done right" fold layout.

`--folds DIR` holds `train/`, `valcl/`, `valpx/` (optional) and `test/`, each with `image_ids.txt` (a relative
image path per line), `class_labels.txt` (`path,label`), `localization.txt` (`path,mask_path`; normal patches
have no mask = all background) and `image_sizes.txt` (`path,width,height`). Paths are relative to `--root`.
When the folds give no valpx, 6 masked images per class are drawn from valcl, fixed by the seed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from pixelcam.data.errors import DatasetError
from pixelcam.data.ingest.common import Entry, check_unique, require_masks

CLASS_NAMES = ["normal", "tumor"]
FOLD_SPLITS = ("train", "valcl", "valpx", "test")


def _read_pairs(path: Path, ncols: int, required: bool = True) -> list[tuple[int, list[str]]]:
    if not path.is_file():
        if required:
            raise DatasetError(f"{path}: not found; expected it in the fold folder")
        return []
    out = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        parts = [p.strip() for p in text.split(",")]
        if len(parts) < ncols:
            raise DatasetError(f"{path}:{line}: expected {ncols} comma-separated fields, got {text!r}")
        out.append((line, parts))
    return out


def _split_entries(root: Path, fold: Path, split: str) -> tuple[list[Entry], dict[str, tuple[int, int]]]:
    ids = _read_pairs(fold / "image_ids.txt", 1)
    labels = {
        p[0]: (f"{fold / 'class_labels.txt'}:{ln}", p[1])
        for ln, p in _read_pairs(fold / "class_labels.txt", 2)
    }
    masks = {
        p[0]: p[1]
        for _, p in _read_pairs(fold / "localization.txt", 1, required=False)
        if len(p) > 1 and p[1]
    }
    sizes = {}
    for ln, p in _read_pairs(fold / "image_sizes.txt", 3, required=False):
        try:
            sizes[p[0]] = (int(p[1]), int(p[2]))
        except ValueError:
            raise DatasetError(
                f"{fold / 'image_sizes.txt'}:{ln}: width/height must be integers, got {p[1:3]}"
            ) from None
    entries = []
    for ln, (path, *_rest) in ids:
        where = f"{fold / 'image_ids.txt'}:{ln}"
        if path not in labels:
            raise DatasetError(f"{where}: {path} has no line in {fold / 'class_labels.txt'}")
        lwhere, raw = labels[path]
        try:
            label = int(raw)
        except ValueError:
            label = -1
        if label not in (0, 1):
            raise DatasetError(f"{lwhere}: unknown label {raw!r}; expected 0 (normal) or 1 (tumor)")
        mask = root / masks[path] if path in masks else None
        entries.append(Entry(f"camelyon16/{path}", root / path, mask, label, split, where))
    return entries, {f"camelyon16/{k}": v for k, v in sizes.items()}


def camelyon16_entries(
    root: Path, folds: Path, seed: int = 0, valpx_per_class: int = 6
) -> tuple[list[Entry], dict[str, tuple[int, int]]]:
    """Entries of all fold splits (with valpx drawn from valcl when absent) and the declared image sizes."""
    entries: list[Entry] = []
    sizes: dict[str, tuple[int, int]] = {}
    for split in FOLD_SPLITS:
        if not (folds / split).is_dir():
            if split == "valpx":
                continue
            raise DatasetError(f"{folds / split}: fold folder missing; expected {list(FOLD_SPLITS)}")
        e, s = _split_entries(root, folds / split, split)
        entries += e
        sizes.update(s)
    check_unique(entries)
    if not any(e.split == "valpx" for e in entries):
        rng = np.random.default_rng(seed)
        chosen: set[str] = set()
        for label in (0, 1):
            pool = [
                e for e in entries if e.split == "valcl" and e.label == label and (label == 0 or e.mask_path)
            ]
            if len(pool) < valpx_per_class:
                raise DatasetError(
                    f"{folds / 'valcl'}: {len(pool)} usable {CLASS_NAMES[label]} images, need "
                    f"{valpx_per_class} to draw valpx (the folds have no valpx/)"
                )
            chosen |= {pool[i].image_id for i in rng.choice(len(pool), valpx_per_class, replace=False)}
        entries = [replace(e, split="valpx") if e.image_id in chosen else e for e in entries]
    require_masks(entries)
    return entries, sizes
