"""Whole-slide images: open a pyramidal slide (tiffslide, or openslide-python when installed), check it, and
pick the pyramid level to analyse.

tiffslide reads pyramidal TIFF (CAMELYON16's `.tif`, generic tiled TIFF with SubIFDs) and SVS in pure Python
over tifffile; openslide-python (a C library) is preferred when present because it reads more vendor formats.
Every failure is a `SlideError` naming the file: a missing path, a file that is not a slide, a single-level
image too large to read whole (not pyramidal), or pixel data that cannot be decoded. A small single-level
image (a region exported from a slide) is read as a one-level slide.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelcam.errors import SlideError

MPP_KEYS = ("openslide.mpp-x", "tiffslide.mpp-x")


@dataclass(frozen=True)
class SlideInfo:
    """What the pipeline needs to know about a slide: per-level (width, height) and downsample, and its
    resolution in micrometres per pixel at level 0 (None when the file does not record it)."""

    path: str
    dimensions: tuple[tuple[int, int], ...]
    downsamples: tuple[float, ...]
    mpp: float | None
    backend: str

    @property
    def name(self) -> str:
        return slide_name(self.path)

    def level_mpp(self, level: int) -> float | None:
        return None if self.mpp is None else self.mpp * self.downsamples[level]


def slide_name(path: str | os.PathLike) -> str:
    """The slide's output name: its file name without the extension(s) (`tumor_001.tif` -> `tumor_001`)."""
    name = Path(str(path)).name
    for ext in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


def _backend() -> tuple[str, Any]:
    try:
        import openslide  # type: ignore[import-not-found]

        return "openslide", openslide.OpenSlide
    except ImportError:
        import tiffslide

        return "tiffslide", tiffslide.TiffSlide


MAX_SIDE = 500_000  # px at level 0: a 2 x 2.5 cm section at 0.04 um/px (scanners: 0.25 um/px, ~200k px)
# A single-level image (a region exported from a slide, CMU-1's small region) is read whole for its thumbnail:
# up to 10,000 px a side (at most 300 MB of RGB); larger ones need a pyramid
SINGLE_LEVEL_MAX_SIDE = 10_000
THUMBNAIL_SIDE = 2048  # px of the long side of the thumbnail tissue is found on


def open_slide(path: str | os.PathLike) -> tuple[Any, SlideInfo]:
    """(slide handle, SlideInfo); SlideError naming `path` when it is missing, unreadable or not pyramidal."""
    path = str(path)
    if "://" not in path and not Path(path).is_file():
        raise SlideError(f"{path}: no such slide file")
    backend, opener = _backend()
    logging.getLogger("tifffile").setLevel(logging.ERROR)  # its warnings become our one-line errors
    try:
        slide = opener(path)
        dims = tuple((int(w), int(h)) for w, h in slide.level_dimensions)
        downs = tuple(float(d) for d in slide.level_downsamples)
    except Exception as exc:  # noqa: BLE001 - TIFF/SVS decoders raise many types; one line names the file
        raise SlideError(f"{path}: not a readable slide ({type(exc).__name__}: {exc})") from None
    if not dims or min(dims[0]) <= 0:
        raise SlideError(f"{path}: not a readable slide (no image data)")
    if max(dims[0]) > MAX_SIDE:  # before a thumbnail is read or a heatmap allocated
        raise SlideError(
            f"{path}: level 0 is {dims[0][0]}x{dims[0][1]} px; at most {MAX_SIDE} px a side (more than any "
            "scanner's slide: a corrupt or forged header?)"
        )
    if len(dims) < 2 and max(dims[0]) > SINGLE_LEVEL_MAX_SIDE:
        raise SlideError(
            f"{path}: not pyramidal, or truncated (1 readable level of {dims[0][0]}x{dims[0][1]} px): a "
            f"whole-slide image larger than {SINGLE_LEVEL_MAX_SIDE} px a side needs reduced-resolution "
            "levels; convert it, e.g. `vips tiffsave IN OUT --tile --pyramid`"
        )
    mpp = None
    for key in MPP_KEYS:
        value = slide.properties.get(key)
        if value not in (None, ""):
            mpp = float(value)
            break
    return slide, SlideInfo(path, dims, downs, mpp, backend)


def choose_level(info: SlideInfo, mpp: float | None = None, level: int | None = None) -> int:
    """The level to analyse: `level` as given, else the one whose resolution is closest to `mpp` (log scale;
    SlideError when the slide records no resolution), else level 0."""
    if level is not None:
        if not 0 <= level < len(info.dimensions):
            raise SlideError(f"{info.path}: --level {level} does not exist ({len(info.dimensions)} levels)")
        return level
    if mpp is None:
        return 0
    if info.mpp is None:
        raise SlideError(
            f"{info.path}: records no resolution (mpp), so --mpp cannot pick a level: use --level"
        )
    ratios = [abs(np.log(info.mpp * d / mpp)) for d in info.downsamples]
    return int(np.argmin(ratios))


def read_region(slide: Any, info: SlideInfo, x0: int, y0: int, level: int, size: int) -> np.ndarray:
    """uint8 (size, size, 3) RGB of the square at level-0 position (x0, y0) read at `level`, zero-padded past
    the slide's edge; SlideError naming the slide and position when the pixel data cannot be decoded."""
    try:
        region = slide.read_region((x0, y0), level, (size, size))
        arr = np.asarray(region)
    except Exception as exc:  # noqa: BLE001 - a corrupt tile: any decoder error, one line naming it
        raise SlideError(
            f"{info.path}: tile at level-0 ({x0}, {y0}), level {level} cannot be read "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 4:  # RGBA (openslide): transparent pixels are outside the scanned area -> white
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        arr = (arr[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3], dtype=np.uint8)


def whole_level(slide: Any, level: int, size: tuple[int, int]) -> np.ndarray | None:
    """A whole level of a tiffslide slide decoded by tifffile (6x faster than tiffslide's `read_region`
    through zarr: 0.1 vs 0.6 s for a 4096 px JPEG level), through tiffslide's public handle on it and series
    index; None for another backend or an array not shaped as the level (then `read_region` reads it)."""
    series = getattr(slide, "properties", {}).get("tiffslide.series-index")
    if series is None or not hasattr(slide, "ts_tifffile"):
        return None
    levels = slide.ts_tifffile.series[series].levels
    if level >= len(levels):
        return None
    arr = levels[level].asarray()
    ok = arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[:2] == size[::-1] and arr.shape[2] in (3, 4)
    return arr if ok else None


def thumbnail(slide: Any, info: SlideInfo, max_size: int = THUMBNAIL_SIDE) -> tuple[np.ndarray, float]:
    """(uint8 RGB thumbnail, level-0 pixels per thumbnail pixel): the smallest level at least `max_size` on
    its long side (or the smallest level), resized to fit `max_size`."""
    from PIL import Image

    sizes = [max(d) for d in info.dimensions]
    candidates = [i for i, s in enumerate(sizes) if s >= max_size]
    level = max(candidates) if candidates else len(sizes) - 1
    w, h = info.dimensions[level]
    try:
        whole = whole_level(slide, level, (w, h))
        region = whole if whole is not None else slide.read_region((0, 0), level, (w, h))
        img = Image.fromarray(np.asarray(region)) if not isinstance(region, Image.Image) else region
        img = img.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - a corrupt level: any decoder error, one line naming it
        raise SlideError(
            f"{info.path}: level {level} ({w}x{h} px) cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    scale = min(1.0, max_size / max(w, h))
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    return np.asarray(img), info.dimensions[0][0] / img.size[0]
