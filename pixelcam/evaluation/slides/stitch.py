"""Streamed stitching of tile maps into one slide heatmap, with overlap blending and bounded memory.

The heatmap has one pixel per `stride` pixels of the analysed level. Each tile's map (already pooled to
(tile/stride)^2) is added, weighted by a window that ramps down over the overlap, into a running weighted
sum and a weight sum; the heatmap is their ratio. Both accumulators are memory-mapped files in the slide's
working directory, so a slide of any size costs the process a few tile maps of RAM (the OS pages the rest),
and tiles may arrive in any order (Ray Data does not keep it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from pixelcam.errors import ConfigError, SlideError
from pixelcam.evaluation.slides.tiles import TileGrid

BAND_ROWS = 256  # heatmap rows finalised at a time


def blend_window(size: int, ramp: int) -> np.ndarray:
    """float32 (size, size) weights: 1 inside, a linear ramp to ~0 over `ramp` pixels at each border, so
    overlapping tiles cross-fade instead of showing seams (ramp 0: uniform)."""
    i = np.arange(size, dtype=np.float32)
    edge = np.minimum(i + 1, size - i)
    w = np.clip(edge / (ramp + 1), 1e-3, 1.0) if ramp > 0 else np.ones(size, np.float32)
    return np.outer(w, w).astype(np.float32)


class Stitcher:
    """Accumulate tile maps of one slide; `finish` writes the uint8 heatmap (0-255 = map 0-1)."""

    def __init__(self, grid: TileGrid, stride: int, workdir: Path) -> None:
        if grid.tile % stride or grid.overlap % stride:
            raise ConfigError(
                f"--heatmap-stride {stride}: must divide --tile ({grid.tile}) and --overlap ({grid.overlap})"
            )
        self.grid, self.stride = grid, stride
        self.t = grid.tile // stride
        self.shape = (-(-grid.height // stride), -(-grid.width // stride))
        self.window = blend_window(self.t, grid.overlap // stride)
        need = 9 * self.shape[0] * self.shape[1]  # two float32 accumulators and the uint8 heatmap
        free = shutil.disk_usage(workdir.parent).free  # checked before anything is made
        if need > free:
            raise SlideError(
                f"{grid.width}x{grid.height} px at --heatmap-stride {stride} needs {need / 2**30:.1f} GiB of "
                f"working space in {workdir.parent}, {free / 2**30:.1f} GiB free: raise --heatmap-stride or "
                "write elsewhere"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        self.sum = np.lib.format.open_memmap(workdir / "sum.npy", "w+", np.float32, self.shape)
        self.weight = np.lib.format.open_memmap(workdir / "weight.npy", "w+", np.float32, self.shape)
        self.tiles = 0

    def add(self, x: int, y: int, tile_map: np.ndarray) -> None:
        """Add the (t, t) map of the tile at level position (x, y)."""
        hx, hy = int(x) // self.stride, int(y) // self.stride
        h = min(self.t, self.shape[0] - hy)
        w = min(self.t, self.shape[1] - hx)
        if h <= 0 or w <= 0:
            return
        win = self.window[:h, :w]
        self.sum[hy : hy + h, hx : hx + w] += tile_map[:h, :w] * win
        self.weight[hy : hy + h, hx : hx + w] += win
        self.tiles += 1

    def finish(self, out: np.ndarray, tissue: np.ndarray, tissue_scale: float) -> np.ndarray:
        """Fill `out` (uint8, `self.shape`) band by band: the blended map on tissue pixels covered by a tile,
        0 elsewhere (`tissue`: bool thumbnail mask, `tissue_scale` level-0 pixels per mask pixel)."""
        level0_per_px = self.grid.downsample * self.stride
        cols = np.minimum(
            ((np.arange(self.shape[1]) + 0.5) * level0_per_px / tissue_scale).astype(np.int64),
            tissue.shape[1] - 1,
        )
        for r0 in range(0, self.shape[0], BAND_ROWS):
            r1 = min(r0 + BAND_ROWS, self.shape[0])
            rows = np.minimum(
                ((np.arange(r0, r1) + 0.5) * level0_per_px / tissue_scale).astype(np.int64),
                tissue.shape[0] - 1,
            )
            on = tissue[rows[:, None], cols[None, :]] & (self.weight[r0:r1] > 0)
            value = np.divide(
                self.sum[r0:r1],
                self.weight[r0:r1],
                out=np.zeros((r1 - r0, self.shape[1]), np.float32),
                where=self.weight[r0:r1] > 0,
            )
            out[r0:r1] = np.where(on, np.clip(np.rint(value * 255.0), 0, 255), 0).astype(np.uint8)
        return out

    def close(self) -> None:
        """Release the accumulators' maps (their files go with the slide's working directory)."""
        self.sum = self.weight = None
