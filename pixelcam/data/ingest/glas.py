"""GlaS (Warwick QU, 2015/2016 release): `train_N.bmp`, `train_N_anno.bmp`, `testA_*`, `testB_*`, `Grade.csv`.

Classes benign (0) / malignant (1); glands are annotated in benign and malignant images alike, so every class
carries an ROI. Gland annotations (instance labels) are binarised. Two ways in:
- `--folds DIR`: the public "WSOL done right" fold files as published (`ingest/folds.py`): the paper's split
  (fold-0: train 67, valcl 18 including valpx 6 = 3 per class, test 80).
- the release directory alone: classes from Grade.csv's "grade (GlaS)" column; testA + testB = test; from
  the train images, 3 per class go to valpx and a seeded, stratified fraction to valcl (DESIGN.md 2).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pixelcam.data.errors import DatasetError
from pixelcam.data.ingest.common import Entry, carve_validation, check_unique, require_masks
from pixelcam.data.ingest.folds import Folds, read_folds

CLASS_NAMES = ["benign", "malignant"]
ROI_CLASSES = CLASS_NAMES  # glands are the ROI in both classes


def glas_folds(root: Path, folds: Path, seed: int = 0, valpx_per_class: int = 3) -> Folds:
    """The fold's entries with splits, declared sizes, class names (from encoding.yaml) and notes."""
    return read_folds(root, folds, CLASS_NAMES, ROI_CLASSES, seed=seed, valpx_per_class=valpx_per_class)


def glas_entries(
    root: Path, seed: int = 0, valpx_per_class: int = 3, valcl_fraction: float = 0.2
) -> list[Entry]:
    """Entries of a GlaS release directory, with splits assigned."""
    grade = root / "Grade.csv"
    if not grade.is_file():
        raise DatasetError(f"{grade}: not found; expected the GlaS release directory with Grade.csv")
    with open(grade, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise DatasetError(f"{grade}: empty")
    header = [c.strip().lower() for c in rows[0]]
    try:
        name_col = header.index("name")
        grade_col = next(i for i, c in enumerate(header) if c.startswith("grade (glas)") or c == "grade")
    except (ValueError, StopIteration):
        raise DatasetError(f"{grade}: header {rows[0]} lacks 'name' and 'grade (GlaS)' columns") from None
    entries = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        where = f"{grade}:{line}"
        if len(row) <= max(name_col, grade_col):
            raise DatasetError(
                f"{where}: expected at least {max(name_col, grade_col) + 1} columns, got {row}"
            )
        name, g = row[name_col].strip(), row[grade_col].strip().lower()
        if g not in CLASS_NAMES:
            raise DatasetError(f"{where}: unknown grade {row[grade_col]!r}; expected one of {CLASS_NAMES}")
        if name.startswith(("testA_", "testB_")):
            split = "test"
        elif name.startswith("train_"):
            split = "train"
        else:
            raise DatasetError(f"{where}: image name {name!r} is neither train_*, testA_* nor testB_*")
        entries.append(
            Entry(
                f"glas-{name}",
                root / f"{name}.bmp",
                root / f"{name}_anno.bmp",
                CLASS_NAMES.index(g),
                split,
                where,
            )
        )
    check_unique(entries)
    entries = carve_validation(entries, np.random.default_rng(seed), valpx_per_class, valcl_fraction, 2)
    require_masks(entries, roi_labels=range(len(CLASS_NAMES)))
    return entries
