"""The slide heatmap as a pyramidal TIFF: OME-TIFF (the default; QuPath, Bio-Formats and napari read its
OME-XML) or a plain TIFF (tiffslide and OpenSlide-style readers).

Level 0 is the uint8 heatmap (0-255 = map value 0-1, one pixel per `level0_per_pixel` slide pixels), tiled
256 x 256, deflate-compressed; reduced levels (2x mean pooling) are SubIFDs down to <= 64 px. The physical
resolution is written in the resolution tags (so a viewer overlays it on the slide at the right scale) and,
in an OME-TIFF, as the image's PhysicalSizeX/Y in micrometres with the channel named; the geometry is the
JSON of the plain TIFF's ImageDescription, or the OME image's Description.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

TIFF_TILE = 256
CHANNEL = "PixelCAM foreground probability (0-255 = 0-1)"
FORMATS = ("ome", "tiff")  # `--heatmap-format`: the writers below (WRITERS)
FILENAMES = {"ome": "heatmap.ome.tif", "tiff": "heatmap.tif"}


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


def write_heatmap_ome_tiff(
    path: Path, heat: np.ndarray, mpp: float | None, description: dict[str, Any]
) -> None:
    """Write `heat` (uint8 (H, W)) and its pyramid to `path` as OME-TIFF (BigTIFF, SubIFD pyramid, OME-XML
    with the physical pixel size when `mpp` is known and the channel's name)."""
    import tifffile

    reduced = pyramid(heat)
    meta: dict[str, Any] = {
        "axes": "YX",
        "Name": "pixelcam heatmap",
        "Description": json.dumps({"pixelcam": description}),
        "Channel": {"Name": [CHANNEL]},
    }
    opts: dict[str, Any] = {"tile": (TIFF_TILE, TIFF_TILE), "compression": "zlib"}
    opts["photometric"] = "minisblack"
    if mpp is not None:
        meta.update(PhysicalSizeX=mpp, PhysicalSizeXUnit="µm", PhysicalSizeY=mpp, PhysicalSizeYUnit="µm")
        opts["resolutionunit"] = "CENTIMETER"
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tif:
        res = {} if mpp is None else {"resolution": (1e4 / mpp, 1e4 / mpp)}
        tif.write(heat, subifds=len(reduced), metadata=meta, **res, **opts)
        for level in reduced:
            scale = heat.shape[1] / level.shape[1]
            res = {} if mpp is None else {"resolution": (1e4 / (mpp * scale), 1e4 / (mpp * scale))}
            tif.write(level, subfiletype=1, metadata=None, **res, **opts)


def write_heatmap(
    path_stem: Path, fmt: str, heat: np.ndarray, mpp: float | None, description: dict[str, Any]
) -> Path:
    """Write the heatmap in format `fmt` (FORMATS) into directory `path_stem`; returns the file written."""
    path = path_stem / FILENAMES[fmt]
    WRITERS[fmt](path, heat, mpp, description)
    return path


WRITERS = {"ome": write_heatmap_ome_tiff, "tiff": write_heatmap_tiff}
