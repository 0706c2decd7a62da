"""The tile grid of a slide at the analysed level, restricted to tissue.

Tiles of `tile` pixels (at the level) step by `tile - overlap`, starting at the top-left corner, until the
slide is covered (the last row/column reads past the edge, zero-padded). A tile is kept when at least
`min_tissue` of its area is tissue on the thumbnail's mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pixelcam.errors import ConfigError


@dataclass(frozen=True)
class TileGrid:
    """Tile geometry at one level: level size (width, height), level-0 pixels per level pixel."""

    level: int
    width: int
    height: int
    downsample: float
    tile: int = 224
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.tile < 8:
            raise ConfigError(f"--tile {self.tile}: expected >= 8 pixels")
        if not 0 <= self.overlap < self.tile:
            raise ConfigError(f"--overlap {self.overlap}: expected 0 <= overlap < tile ({self.tile})")

    @property
    def step(self) -> int:
        return self.tile - self.overlap

    def starts(self, length: int) -> np.ndarray:
        """Tile starts along one axis covering [0, length)."""
        last = max(length - self.tile, 0)
        n = int(np.ceil(last / self.step)) + 1
        return np.arange(n, dtype=np.int64) * self.step

    def all_positions(self) -> np.ndarray:
        """(N, 2) int64 level coordinates (x, y) of every tile, row-major."""
        ys, xs = np.meshgrid(self.starts(self.height), self.starts(self.width), indexing="ij")
        return np.stack([xs.ravel(), ys.ravel()], axis=1)

    def tissue_positions(
        self, mask: np.ndarray, mask_scale: float, min_tissue: float = 0.05
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, tissue fractions) of the tiles with >= `min_tissue` tissue on `mask` (bool, thumbnail
        pixels; `mask_scale` level-0 pixels per mask pixel), from an integral image (O(1) per tile)."""
        pos = self.all_positions()
        integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        f = self.downsample / mask_scale  # mask pixels per level pixel
        mh, mw = mask.shape
        x0 = np.clip(np.floor(pos[:, 0] * f).astype(np.int64), 0, mw)
        y0 = np.clip(np.floor(pos[:, 1] * f).astype(np.int64), 0, mh)
        x1 = np.clip(np.ceil((pos[:, 0] + self.tile) * f).astype(np.int64), 0, mw)
        y1 = np.clip(np.ceil((pos[:, 1] + self.tile) * f).astype(np.int64), 0, mh)
        inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        # the tile's whole area on the mask's grid, also the part past the slide's edge (which is not tissue)
        area = (np.ceil((pos[:, 0] + self.tile) * f) - np.floor(pos[:, 0] * f)) * (
            np.ceil((pos[:, 1] + self.tile) * f) - np.floor(pos[:, 1] * f)
        )
        frac = inside / np.maximum(area, 1)
        keep = frac >= min_tissue
        return pos[keep], frac[keep].astype(np.float32)

    def level0(self, positions: np.ndarray) -> np.ndarray:
        """Level-0 pixel coordinates of level positions (what `read_region` takes)."""
        return np.round(positions * self.downsample).astype(np.int64)
