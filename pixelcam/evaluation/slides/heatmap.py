"""The slide heatmap as a pyramidal TIFF (what tiffslide, OpenSlide-style and QuPath-style viewers open).

Level 0 is the uint8 heatmap (0-255 = map value 0-1, one pixel per `level0_per_pixel` slide pixels), tiled
256 x 256, deflate-compressed; reduced levels (2x mean pooling) are SubIFDs down to <= 64 px. The physical
resolution is written in the resolution tags (so a viewer overlays it on the slide at the right scale) and
the geometry once more in the ImageDescription as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

TIFF_TILE = 256


def pyramid(heat: np.ndarray, min_size: int = 64) -> list[np.ndarray]:
    """Reduced levels of `heat` by 2x mean pooling (odd edges padded by repetition) until <= `min_size`."""
    levels = []
    cur = heat
    while max(cur.shape) > min_size:
        h, w = cur.shape
        padded = np.pad(cur, ((0, h % 2), (0, w % 2)), mode="edge").astype(np.uint16)
        cur = (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2] + 2) // 4
        cur = cur.astype(np.uint8)
        levels.append(cur)
    return levels


def write_heatmap_tiff(path: Path, heat: np.ndarray, mpp: float | None, description: dict[str, Any]) -> None:
    """Write `heat` (uint8 (H, W)) and its pyramid to `path` (BigTIFF; the caller renames it into place).
    `mpp`: micrometres per heatmap pixel (None: the slide recorded none, no resolution tags)."""
    import tifffile

    reduced = pyramid(heat)
    res = {} if mpp is None else {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": "CENTIMETER"}
    opts = {"tile": (TIFF_TILE, TIFF_TILE), "compression": "zlib", "photometric": "minisblack"}
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            heat,
            subifds=len(reduced),
            description=json.dumps({"pixelcam": description}),
            metadata=None,
            **res,
            **opts,
        )
        for level in reduced:
            tif.write(level, subfiletype=1, metadata=None, **opts)
