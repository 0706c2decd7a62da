"""Stand-in images and masks at exactly the paths the public fold files in `../shared/real-folds/` list, at
the sizes their sizes files state, so the published files can be ingested as they are."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

REAL_FOLDS = Path(__file__).resolve().parents[4] / "shared" / "real-folds"
GLAS_FOLDS = sorted((REAL_FOLDS / "GLAS").glob("fold-*"))
CAMELYON_FOLDS = sorted((REAL_FOLDS / "CAMELYON512").glob("fold-*"))
SIZE_FILES = ("image_sizes.txt", "images_size.txt")


def lines(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines() if line.strip()]


def listed(fold: Path) -> tuple[dict[str, tuple[int, int]], dict[str, str | None]]:
    """Every image the fold lists with its stated (W, H), and its mask path (None: no ROI)."""
    sizes, masks = {}, {}
    for split in fold.iterdir():
        if not split.is_dir():
            continue
        size_file = next(split / n for n in SIZE_FILES if (split / n).is_file())
        sizes.update({p[0]: (int(p[1]), int(p[2])) for p in lines(size_file)})
        for p in lines(split / "localization.txt"):
            masks[p[0]] = p[1] if len(p) > 1 and p[1] not in ("", "None") else None
    return sizes, masks


def build_stand_ins(root: Path, folds: list[Path]) -> Path:
    """Write an image (BMP for GlaS, PNG otherwise) and its mask for every path the folds list. Flat tiles,
    each file encoded once per distinct content and copied after (CAMELYON16's 512 px patches repeat)."""
    done: set[str] = set()
    encoded: dict[tuple, bytes] = {}
    for fold in folds:
        sizes, masks = listed(fold)
        for k, (rel, (w, h)) in enumerate(sorted(sizes.items())):
            if rel in done:
                continue
            done.add(rel)
            path = root / rel
            color = (180 + k % 50, 120 + k % 70, 170)
            _write(path, encoded, (path.suffix, w, h, color), partial(_tile, w, h, color))
            if masks.get(rel):
                mp = root / masks[rel]
                value = 255 if path.suffix == ".png" else 3  # GlaS: instance ids
                _write(mp, encoded, (mp.suffix, w, h, value), partial(_mask, w, h, value))
    return root


def _tile(w: int, h: int, color: tuple[int, int, int]) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = color  # flat tiles: cheap to write and to encode
    img[h // 4 : h // 2, w // 4 : w // 2] = (90, 40, 120)
    return img


def _mask(w: int, h: int, value: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 4 : h // 2, w // 4 : w // 2] = value
    return m


def _write(path: Path, encoded: dict[tuple, bytes], key: tuple, pixels: Callable[[], np.ndarray]) -> None:
    """`path` holding `pixels()` encoded by its suffix (PNG at compression level 1), once per `key`."""
    if key not in encoded:
        buf = io.BytesIO()
        kind = path.suffix.lstrip(".").upper()  # BMP (GlaS) or PNG
        Image.fromarray(pixels()).save(buf, format=kind, **({"compress_level": 1} if kind == "PNG" else {}))
        encoded[key] = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded[key])
