"""Synthetic whole slides for tests, benchmarks and a first try of `pixelcam predict` without real WSIs.

A slide is white glass with one elliptical piece of tissue, tiled with a domain's patches (their ROI masks
tiled the same way give the slide's ROI), written as a pyramidal, tiled, JPEG-compressed BigTIFF at 0.5 um/px
(levels 1, 1/2, 1/4, ...) with a binary ROI mask TIFF beside it. Levels are written strip by strip from
generators, so a large slide never sits in memory whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pixelcam.data.png import decode_image, decode_mask
from pixelcam.data.reader import PatchDataset, as_dataset
from pixelcam.storage.atomic import atomic_file

TIFF_TILE = 256
MPP = 0.5


def _patches(ds: PatchDataset, domain: str, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    table = ds.read_table([domain], [split], columns=["image", "mask"]).to_pylist()
    images, masks = [], []
    for row in table:
        img = decode_image(row["image"])
        mask = decode_mask(row["mask"]) if row["mask"] else np.zeros(img.shape[:2], np.uint8)
        if img.shape[0] != size:
            img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
            mask = np.asarray(Image.fromarray(mask).resize((size, size), Image.NEAREST))
        images.append(img)
        masks.append(mask)
    return np.stack(images), np.stack(masks)


class _Layout:
    """Which patch lies in each cell of the slide's grid (-1: glass), from a seeded draw."""

    def __init__(self, size: int, patch: int, count: int, seed: int) -> None:
        self.size, self.patch = size, patch
        n = -(-size // patch)
        rng = np.random.default_rng(seed)
        yy, xx = (np.mgrid[0:n, 0:n] + 0.5) * patch
        c = size / 2
        inside = ((xx - c) / (0.42 * size)) ** 2 + ((yy - c) / (0.30 * size)) ** 2 <= 1.0
        self.cells = np.where(inside, rng.integers(0, count, (n, n)), -1)
        self.noise_seed = seed

    def strip(
        self, y0: int, rows: int, images: np.ndarray, masks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Level-0 rows [y0, y0 + rows) of the slide (RGB) and of its ROI mask."""
        p, size = self.patch, self.size
        rgb = np.empty((rows, size, 3), np.uint8)
        roi = np.zeros((rows, size), np.uint8)
        rng = np.random.default_rng((self.noise_seed, y0))
        rgb[:] = 236 + rng.integers(0, 8, (rows, size, 1), dtype=np.uint8)  # glass: bright grey noise
        for r in range(y0 // p, -(-(y0 + rows) // p)):
            top, bottom = max(r * p, y0), min((r + 1) * p, y0 + rows, size)
            for c, k in enumerate(self.cells[r]):
                if k < 0:
                    continue
                left, right = c * p, min((c + 1) * p, size)
                rgb[top - y0 : bottom - y0, left:right] = images[
                    k, top - r * p : bottom - r * p, : right - left
                ]
                roi[top - y0 : bottom - y0, left:right] = masks[
                    k, top - r * p : bottom - r * p, : right - left
                ]
        return rgb, roi


def write_synthetic_slide(
    path: str | os.PathLike,
    data: PatchDataset | str | os.PathLike,
    domain: str,
    size: int = 4096,
    patch: int | None = None,
    split: str = "test",
    seed: int = 0,
    mask_downsample: int = 4,
) -> Path:
    """Write `path` (pyramidal TIFF, `size` x `size` at level 0) and `<stem>_mask.tif` (its ROI at
    1/`mask_downsample`, pyramidal); returns the mask's path. `patch`: cell size (default: the patches')."""
    ds = as_dataset(data)
    first = ds.read_table([domain], [split], columns=["height"]).column("height")[0].as_py()
    patch = patch or int(first)
    images, masks = _patches(ds, domain, split, patch)
    layout = _Layout(size, patch, len(images), seed)
    path = Path(path)
    mask_path = path.with_name(path.stem + "_mask.tif")

    def level_tiles(level: int, channel: int | None) -> Iterator[np.ndarray]:
        """Tiles of level `level` (2**level reduction), row-major, from level-0 strips."""
        f = 2**level
        rows0 = TIFF_TILE * f
        for y0 in range(0, size, rows0):
            n = min(rows0, size - y0)
            rgb, roi = layout.strip(y0, n, images, masks)
            arr = (roi * 255)[..., None] if channel is None else rgb
            arr = arr[::f, ::f] if f > 1 else arr
            for x in range(0, arr.shape[1], TIFF_TILE):
                t = arr[:, x : x + TIFF_TILE]
                out = np.zeros((TIFF_TILE, TIFF_TILE, t.shape[2]), np.uint8)
                out[: t.shape[0], : t.shape[1]] = t
                yield out if channel is not None else out[..., 0]

    levels = max(2, int(np.log2(size / 512)) + 1)
    _write_pyramid(path, size, levels, lambda lv: level_tiles(lv, 0), rgb=True, mpp=MPP)
    mlevels = max(2, int(np.log2(size / mask_downsample / 256)) + 1)
    _write_pyramid(
        mask_path,
        size,
        mlevels,
        lambda lv: level_tiles(lv + int(np.log2(mask_downsample)), None),
        rgb=False,
        mpp=MPP * mask_downsample,
        base=size // mask_downsample,
    )
    return mask_path


def _write_pyramid(
    path: Path, size: int, levels: int, tiles, rgb: bool, mpp: float, base: int | None = None
) -> None:
    import tifffile

    base = base or size
    opts = {
        "tile": (TIFF_TILE, TIFF_TILE),
        "compression": "jpeg" if rgb else "zlib",
        "photometric": "rgb" if rgb else "minisblack",
        "dtype": np.uint8,
        "metadata": None,
    }
    shape = lambda s: (s, s, 3) if rgb else (s, s)  # noqa: E731
    with atomic_file(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=True) as tif:
        tif.write(
            tiles(0),
            shape=shape(base),
            subifds=levels - 1,
            resolution=(1e4 / mpp, 1e4 / mpp),
            resolutionunit="CENTIMETER",
            **opts,
        )
        for lv in range(1, levels):
            tif.write(tiles(lv), shape=shape(-(-base // 2**lv)), subfiletype=1, **opts)
