"""Shared steps of the ingest converters: load and check one image/mask pair, assign seeded splits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pixelcam.data.errors import DatasetError
from pixelcam.data.png import encode_png, read_image_file, read_mask_file
from pixelcam.data.schema import Patch


@dataclass(frozen=True)
class Entry:
    """One image to ingest, before loading: where it was listed (`where`) is used in error messages."""

    image_id: str
    image_path: Path
    mask_path: Path | None
    label: int
    split: str
    where: str


def load_patch(
    entry: Entry,
    domain: str,
    class_names: Sequence[str],
    negative_means_empty: bool = True,
    expected_size: tuple[int, int] | None = None,
) -> Patch:
    """Read, validate and PNG-encode one entry.

    A missing mask on a class-0 (normal) image means an all-background mask when `negative_means_empty`.
    A mask whose size differs from its image, or an image whose size differs from `expected_size` (W, H),
    is an error naming both files.
    """
    if not entry.image_path.is_file():
        raise DatasetError(f"{entry.image_path}: image file not found (listed in {entry.where})")
    image = read_image_file(str(entry.image_path))
    h, w = image.shape[:2]
    if expected_size is not None and expected_size != (w, h):
        raise DatasetError(
            f"{entry.image_path}: image is {w}x{h} but {entry.where} says "
            f"{expected_size[0]}x{expected_size[1]}"
        )
    mask = None
    if entry.mask_path is not None:
        if not entry.mask_path.is_file():
            raise DatasetError(f"{entry.mask_path}: mask file not found (listed in {entry.where})")
        m = read_mask_file(str(entry.mask_path))
        if m.shape != (h, w):
            raise DatasetError(
                f"{entry.mask_path}: mask is {m.shape[1]}x{m.shape[0]} but its image "
                f"{entry.image_path} is {w}x{h}"
            )
        mask = encode_png(m, compress_level=6)
    elif entry.label == 0 and negative_means_empty:
        mask = encode_png(np.zeros((h, w), np.uint8), compress_level=6)
    return Patch(
        image_id=entry.image_id,
        domain=domain,
        split=entry.split,
        label=entry.label,
        label_name=class_names[entry.label],
        image=encode_png(image, compress_level=6),
        mask=mask,
        height=h,
        width=w,
        source_path=str(entry.image_path),
    )


def check_unique(entries: Iterable[Entry]) -> None:
    """DatasetError naming both places when an image id appears twice."""
    seen: dict[str, str] = {}
    for e in entries:
        if e.image_id in seen:
            raise DatasetError(
                f"duplicate image {e.image_id!r}: listed in {seen[e.image_id]} and in {e.where}"
            )
        seen[e.image_id] = e.where


def require_masks(entries: Iterable[Entry], splits: Sequence[str] = ("valpx", "test")) -> None:
    """Positive images in pixel-evaluated splits need a mask."""
    for e in entries:
        if e.split in splits and e.label > 0 and e.mask_path is None:
            raise DatasetError(
                f"{e.where}: {e.image_id} is a positive image in split {e.split!r} but has no mask; "
                f"pixel evaluation needs one"
            )


def carve_validation(
    entries: list[Entry],
    rng: np.random.Generator,
    valpx_per_class: int,
    valcl_fraction: float,
    num_classes: int,
) -> list[Entry]:
    """Move `valpx_per_class` masked train images per class to valpx and a fraction of the rest to valcl.

    Stratified per class and fixed by `rng`, so the same seed gives the same split.
    """
    out = [e for e in entries if e.split != "train"]
    for label in range(num_classes):
        pool = [e for e in entries if e.split == "train" and e.label == label]
        order = rng.permutation(len(pool))
        pool = [pool[i] for i in order]
        masked = [e for e in pool if e.mask_path is not None or label == 0]
        if len(masked) < valpx_per_class:
            raise DatasetError(
                f"class {label}: {len(masked)} images with masks, need {valpx_per_class} for valpx"
            )
        valpx = masked[:valpx_per_class]
        rest = [e for e in pool if e not in valpx]
        n_valcl = max(1, round(len(rest) * valcl_fraction)) if valcl_fraction > 0 else 0
        out += [replace(e, split="valpx") for e in valpx]
        out += [replace(e, split="valcl") for e in rest[:n_valcl]] + rest[n_valcl:]
    return out
