"""Deep Zoom (DZI) tile pyramids: what OpenSeadragon, and most zoomable web viewers, read.

A DZI image of W x H pixels has levels 0 .. L with L = ceil(log2(max(W, H))); level l is the image scaled
by 2^(l - L) (sides rounded up), cut into `tile` x `tile` tiles (no overlap) stored as
`NAME_files/<level>/<column>_<row>.<format>`. `NAME.dzi` is the XML descriptor; the same descriptor as a
dict (OpenSeadragon's inline form) is returned, so a page opened from disk needs no request for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

TILE = 256
XMLNS = "http://schemas.microsoft.com/deepzoom/2008"


def max_level(width: int, height: int) -> int:
    """The DZI's top level: ceil(log2 of the longer side) (a 1 x 1 image has level 0 only)."""
    return max(0, math.ceil(math.log2(max(width, height))))


def level_size(width: int, height: int, level: int) -> tuple[int, int]:
    """(w, h) of `level`: the full size divided by 2^(top - level), rounded up."""
    scale = 2 ** (max_level(width, height) - level)
    return max(1, math.ceil(width / scale)), max(1, math.ceil(height / scale))


def write_dzi(image: np.ndarray, directory: Path, name: str, fmt: str = "jpeg", tile: int = TILE) -> dict:
    """Write `image` (uint8 (H, W, 3) RGB, or (H, W, 4) RGBA with `fmt` png) as `directory/NAME.dzi` and
    its tiles; returns the inline descriptor (Url relative to `directory`)."""
    from PIL import Image

    height, width = image.shape[:2]
    files = directory / f"{name}_files"
    current = Image.fromarray(image)
    for level in range(max_level(width, height), -1, -1):
        size = level_size(width, height, level)
        if current.size != size:
            current = current.resize(size, Image.LANCZOS if fmt == "jpeg" else Image.BILINEAR)
        (files / str(level)).mkdir(parents=True, exist_ok=True)
        for row in range(math.ceil(size[1] / tile)):
            for col in range(math.ceil(size[0] / tile)):
                box = (col * tile, row * tile, min(size[0], (col + 1) * tile), min(size[1], (row + 1) * tile))
                path = files / str(level) / f"{col}_{row}.{fmt}"
                current.crop(box).save(path, **({"quality": 85} if fmt == "jpeg" else {}))
    descriptor = {
        "Image": {
            "xmlns": XMLNS,
            "Url": f"{name}_files/",
            "Format": fmt,
            "Overlap": "0",
            "TileSize": str(tile),
            "Size": {"Width": str(width), "Height": str(height)},
        }
    }
    (directory / f"{name}.dzi").write_text(_xml(descriptor["Image"]))
    return descriptor


def _xml(image: dict[str, Any]) -> str:
    size = image["Size"]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Image xmlns="{XMLNS}" Format="{image["Format"]}" Overlap="{image["Overlap"]}" '
        f'TileSize="{image["TileSize"]}"><Size Width="{size["Width"]}" Height="{size["Height"]}"/></Image>\n'
    )
