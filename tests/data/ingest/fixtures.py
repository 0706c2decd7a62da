"""Builders of tiny datasets in the real on-disk layouts (GlaS release, CAMELYON16 folds, folder + CSV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def save(path: Path, arr: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


def rgb(seed: int, h: int = 20, w: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def instance_mask(seed: int, h: int = 20, w: int = 24) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[2:8, 3:9] = 1  # gland instance 1
    m[10:16, 12:20] = 2 + seed % 3  # gland instance 2..4
    return m


def make_glas(root: Path, n_train_per_class: int = 6) -> Path:
    """Warwick GlaS layout: train_N.bmp / train_N_anno.bmp, testA_*, testB_*, Grade.csv (with its spaces)."""
    rows = ["name,Patient ID,grade (GlaS),grade (Sirinukunwattana et al. 2015)"]
    k = 0
    for prefix, n in (("train", 2 * n_train_per_class), ("testA", 4), ("testB", 2)):
        for i in range(1, n + 1):
            grade = " benign" if i % 2 else " malignant"
            rows.append(f"{prefix}_{i}, {k % 7},{grade}, adenomatous")
            size = (20 + i % 3, 24)  # GlaS images vary in size
            save(root / f"{prefix}_{i}.bmp", rgb(k, *size), "BMP")
            save(root / f"{prefix}_{i}_anno.bmp", instance_mask(k, *size), "BMP")
            k += 1
    (root / "Grade.csv").write_text("\n".join(rows) + "\n")
    return root


def make_camelyon(root: Path, with_valpx: bool = True, per_split: dict[str, int] | None = None) -> Path:
    """CAMELYON16 patches + WSOL fold files; normal patches have no mask line."""
    per_split = per_split or {"train": 4, "valcl": 8, "valpx": 6, "test": 4}
    folds = root / "folds"
    k = 0
    for split, n in per_split.items():
        if split == "valpx" and not with_valpx:
            continue
        ids, labels, loc, sizes = [], [], [], []
        for i in range(n):
            for label, cls in ((0, "normal"), (1, "tumor")):
                rel = f"patches/{cls}/{split}_{i}.png"
                save(root / rel, rgb(k, 16, 16))
                ids.append(rel)
                labels.append(f"{rel},{label}")
                sizes.append(f"{rel},16,16")
                if label == 1:
                    mrel = f"masks/{split}_{i}.png"
                    m = np.zeros((16, 16), np.uint8)
                    m[4:12, 4:12] = 255
                    save(root / mrel, m)
                    loc.append(f"{rel},{mrel}")
                k += 1
        d = folds / split
        d.mkdir(parents=True, exist_ok=True)
        (d / "image_ids.txt").write_text("\n".join(ids) + "\n")
        (d / "class_labels.txt").write_text("\n".join(labels) + "\n")
        (d / "localization.txt").write_text("\n".join(loc) + "\n")
        (d / "image_sizes.txt").write_text("\n".join(sizes) + "\n")
    return folds


def make_folder(root: Path) -> Path:
    """images/ + masks/ + labels.csv (image,label,split,mask)."""
    rows = ["image,label,split,mask"]
    k = 0
    for split in ("train", "valcl", "valpx", "test"):
        for label in ("normal", "cancer"):
            img = f"images/{split}_{label}.png"
            save(root / img, rgb(k, 12, 12))
            mask = ""
            if label == "cancer":
                mask = f"masks/{split}_{label}.png"
                save(root / mask, (instance_mask(k, 12, 12) > 0).astype(np.uint8))
            rows.append(f"{img},{label},{split},{mask}")
            k += 1
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"
