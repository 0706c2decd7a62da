"""Deep Zoom (DZI) tile pyramids: what OpenSeadragon, and most zoomable web viewers, read.

A DZI image of W x H pixels has levels 0 .. L with L = ceil(log2(max(W, H))); level l is the image scaled
by 2^(l - L) (sides rounded up), cut into `tile` x `tile` tiles (no overlap) stored as
`NAME_files/<level>/<column>_<row>.<format>`. `NAME.dzi` is the XML descriptor; the same descriptor as a
dict (OpenSeadragon's inline form) is returned, so a page opened from disk needs no request for it.
"""

from __future__ import annotations

import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
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
    its tiles; returns the inline descriptor (Url relative to `directory`).

    Tiles are encoded on a few threads (Pillow's encoders release the GIL); PNG tiles use zlib's fastest
    level, and a fully transparent one (most of an outline layer) is written from one cached encoding."""
    from PIL import Image

    height, width = image.shape[:2]
    files = directory / f"{name}_files"
    current = Image.fromarray(image)
    with ThreadPoolExecutor(max_workers=_threads()) as pool:
        for level in range(max_level(width, height), -1, -1):
            size = level_size(width, height, level)
            if current.size != size:  # each level is the one above halved, sides rounded up: a 2x2 box mean
                current = current.reduce(2)  # (10x faster than a Lanczos resize at 4096 px, alike on screen)
            (files / str(level)).mkdir(parents=True, exist_ok=True)
            alpha = np.asarray(current.getchannel("A")) if current.mode == "RGBA" else None
            boxes = [
                (col * tile, row * tile, min(size[0], (col + 1) * tile), min(size[1], (row + 1) * tile))
                for row in range(math.ceil(size[1] / tile))
                for col in range(math.ceil(size[0] / tile))
            ]
            save = partial(_save_tile, current, alpha, files / str(level), fmt, tile)
            list(pool.map(save, boxes))  # list: a tile's error is raised here
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


def _threads() -> int:
    """Encoding threads: the machine's CPUs, at most 4 (tiles are small; more threads only contend)."""
    return min(4, os.cpu_count() or 1)


@lru_cache(maxsize=64)
def _clear_png(width: int, height: int) -> bytes:
    """The PNG bytes of a fully transparent RGBA tile of this size."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (width, height)).save(buf, "png", compress_level=1)
    return buf.getvalue()


def _save_tile(
    image: Any, alpha: np.ndarray | None, folder: Path, fmt: str, tile: int, box: tuple[int, int, int, int]
) -> None:
    """Encode the `box` crop of `image` as `folder/<column>_<row>.<fmt>`."""
    path = folder / f"{box[0] // tile}_{box[1] // tile}.{fmt}"
    if alpha is not None and not alpha[box[1] : box[3], box[0] : box[2]].any():
        path.write_bytes(_clear_png(box[2] - box[0], box[3] - box[1]))
    else:
        image.crop(box).save(path, **({"quality": 85} if fmt == "jpeg" else {"compress_level": 1}))


def _xml(image: dict[str, Any]) -> str:
    size = image["Size"]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Image xmlns="{XMLNS}" Format="{image["Format"]}" Overlap="{image["Overlap"]}" '
        f'TileSize="{image["TileSize"]}"><Size Width="{size["Width"]}" Height="{size["Height"]}"/></Image>\n'
    )
