"""Shared steps of the ingest converters: load and check one image/mask pair, assign seeded splits."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from pixelcam.data.errors import DatasetError
from pixelcam.data.png import decode_reason, encode_png, read_mask_file
from pixelcam.data.schema import Patch
from pixelcam.data.writer import row_digest


@dataclass(frozen=True)
class Entry:
    """One image to ingest, before loading: where it was listed (`where`) is used in error messages.
    `also_valcl`: a valpx image that the protocol also counts in valcl (valpx is a subset of valcl)."""

    image_id: str
    image_path: Path
    mask_path: Path | None
    label: int
    split: str
    where: str
    also_valcl: bool = False
    mask_where: str = ""  # where the mask was listed, when not where the image was (localization.txt)


@functools.lru_cache(maxsize=16)
def empty_mask(h: int, w: int) -> bytes:
    """The PNG of an all-background (H, W) mask; the same bytes for every image of a size."""
    return encode_png(np.zeros((h, w), np.uint8), compress_level=6)


def _png_rgb(raw: bytes, where: Path) -> tuple[np.ndarray, bool]:
    """(the decoded RGB image, whether `raw` already is an 8-bit RGB PNG that can be stored as is)."""
    try:
        with Image.open(io.BytesIO(raw)) as im:
            keep = im.format == "PNG" and im.mode == "RGB"
            return np.asarray(im.convert("RGB")), keep  # a full decode: truncated files fail here
    except Exception as exc:  # PIL raises several types for corrupt data
        raise DatasetError(f"{where}: cannot decode image ({decode_reason(exc)})") from exc


def load_patch(
    entry: Entry,
    domain: str,
    class_names: Sequence[str],
    roi_labels: Collection[int] | None = None,
    expected_size: tuple[int, int, str] | None = None,
    root: Path | None = None,
) -> Patch:
    """Read, validate and PNG-encode one entry (an 8-bit RGB PNG keeps its bytes: no re-encoding).

    An image without a mask is all background when its class carries no ROI (`roi_labels`, default: every
    class but 0), else it has no pixel labels. A mask whose size differs from its image, or an image whose
    size differs from `expected_size` (W, H, where the folds state it), is an error naming the file that
    states the wrong fact. `source_path` is kept relative to `root`, so the dataset does not depend on
    where it was built.
    """
    roi = set(range(1, len(class_names))) if roi_labels is None else set(roi_labels)
    try:
        raw = entry.image_path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        hint = spelling_hint(entry.image_path)
        raise DatasetError(
            f"{entry.image_path}: image file not found (listed in {entry.where}){hint}"
        ) from None
    image, keep = _png_rgb(raw, entry.image_path)
    h, w = image.shape[:2]
    if expected_size is not None and expected_size[:2] != (w, h):
        raise DatasetError(
            f"{expected_size[2]}: says {entry.image_id} is {expected_size[0]}x{expected_size[1]}, but "
            f"{entry.image_path} is {w}x{h}"
        )
    mask = None
    if entry.mask_path is not None:
        if not entry.mask_path.is_file():
            listed = entry.mask_where or entry.where
            hint = spelling_hint(entry.mask_path)
            raise DatasetError(f"{entry.mask_path}: mask file not found (listed in {listed}){hint}")
        m = read_mask_file(str(entry.mask_path))
        if m.shape != (h, w):
            raise DatasetError(
                f"{entry.mask_path}: mask is {m.shape[1]}x{m.shape[0]} but its image "
                f"{entry.image_path} is {w}x{h}"
            )
        mask = encode_png(m, compress_level=1)  # a binary mask compresses well even at the fastest level
    elif entry.label not in roi:
        mask = empty_mask(h, w)
    source = entry.image_path
    if root is not None and entry.image_path.is_relative_to(root):
        source = entry.image_path.relative_to(root)
    patch = Patch(
        image_id=entry.image_id,
        domain=domain,
        split=entry.split,
        label=entry.label,
        label_name=class_names[entry.label],
        image=raw if keep else encode_png(image, compress_level=6),
        mask=mask,
        height=h,
        width=w,
        source_path=str(source),
        in_valcl=entry.also_valcl,
    )
    return replace(patch, digest=row_digest(patch))  # hashed here, in the worker, not in the writer


@functools.lru_cache(maxsize=8)
def _real(root: Path) -> Path:
    """`root` with symlinks resolved, once per root (not once per listed image)."""
    return root.resolve()


def listed_path(root: Path, rel: str, where: str, what: str = "image") -> tuple[str, Path]:
    """(normalised relative path, file) of a path a list names; DatasetError when it is absolute or leads
    outside `root` (`../`, a symlink out): a list file must not make the ingest read anything else."""
    norm = os.path.normpath(rel)
    target = (root / norm).resolve()
    if os.path.isabs(rel) or not target.is_relative_to(_real(root)):
        raise DatasetError(
            f"{where}: {what} path {rel!r} leads outside --root {root}; listed paths must stay inside it"
        )
    return norm, root / norm


def spelling_hint(path: Path) -> str:
    """A hint when a missing file's folder exists under another spelling of spaces and underscores (GlaS's
    release unpacks as `Warwick QU Dataset (Released 2016_07_08)`, the published folds write underscores)."""
    parent = Path(path.anchor) if path.is_absolute() else Path()
    for part in path.parts[1:] if path.is_absolute() else path.parts:
        if not (parent / part).exists():
            key = part.replace(" ", "_")
            twins = (
                [p for p in parent.iterdir() if p.name.replace(" ", "_") == key] if parent.is_dir() else []
            )
            if twins:
                return (
                    f"; {twins[0]} exists: the list and the folder differ in spaces and underscores "
                    f"(rename the folder to {part!r})"
                )
            return ""
        parent = parent / part
    return ""


def check_unique(entries: Iterable[Entry]) -> None:
    """DatasetError naming both places when an image is listed twice: the same id, or two spellings of one
    file (`./img/x.png` and `img/x.png`, a symlink), which would leak an image between splits."""
    seen: dict[str, str] = {}
    files: dict[Path, tuple[str, str]] = {}
    for e in entries:
        if e.image_id in seen:
            raise DatasetError(
                f"duplicate image {e.image_id!r}: listed in {seen[e.image_id]} and in {e.where}"
            )
        seen[e.image_id] = e.where
        real = e.image_path.resolve()
        if real in files:
            first_id, first_where = files[real]
            raise DatasetError(
                f"duplicate image: {e.image_id!r} ({e.where}) and {first_id!r} ({first_where}) are the same "
                f"file {real}"
            )
        files[real] = (e.image_id, e.where)


def require_masks(
    entries: Iterable[Entry],
    roi_labels: Collection[int] | None = None,
    splits: Sequence[str] = ("valpx", "test"),
) -> None:
    """Images of a class with ROI (default: every class but 0) in pixel-evaluated splits need a mask."""
    for e in entries:
        positive = e.label > 0 if roi_labels is None else e.label in roi_labels
        if e.split in splits and positive and e.mask_path is None:
            raise DatasetError(
                f"{e.where}: {e.image_id} (class {e.label}, which has an ROI) is in split {e.split!r} "
                f"without a mask; pixel evaluation needs one"
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
