"""Drawing primitives for synthetic H&E tiles: stain densities (Beer-Lambert), nuclei, glands, blobs.

Everything is drawn as two density maps, hematoxylin `H` (nuclei, blue-purple) and eosin `E` (cytoplasm and
stroma, pink), then turned into RGB with a domain's stain vectors: RGB = 255 * exp(-(H h + E e)). Domains and
stain shifts then differ by their vectors and intensities, as real scanners and stain protocols do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Stain:
    """Optical-density vectors (RGB) of hematoxylin and eosin and a background OD offset."""

    hematoxylin: tuple[float, float, float]
    eosin: tuple[float, float, float]
    background: tuple[float, float, float] = (0.02, 0.03, 0.02)

    def render(
        self, h: np.ndarray, e: np.ndarray, rng: np.random.Generator, jitter: float = 0.08
    ) -> np.ndarray:
        """(S, S, 3) uint8 RGB from density maps; per-image stain jitter mimics slide-to-slide variation."""
        hv = np.asarray(self.hematoxylin, np.float32) * (1 + jitter * rng.standard_normal(3)).astype(
            np.float32
        )
        ev = np.asarray(self.eosin, np.float32) * (1 + jitter * rng.standard_normal(3)).astype(np.float32)
        od = h[..., None] * hv + e[..., None] * ev + np.asarray(self.background, np.float32)
        return (255.0 * np.exp(-od)).clip(0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(yy, xx) float32 pixel-centre coordinates of a size x size canvas."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


def smooth_noise(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """Band-limited noise in [0, 1] with features about `cell` pixels wide (bilinear upsampled lattice)."""
    n = max(2, int(np.ceil(size / cell)) + 2)
    lattice = rng.random((n, n), dtype=np.float32)
    out = ndimage.zoom(lattice, size / (n - 1), order=1, mode="nearest", grid_mode=False)
    return out[:size, :size]


def blob_mask(
    rng: np.random.Generator, size: int, cx: float, cy: float, radius: float, roughness: float = 0.35
) -> np.ndarray:
    """Bool mask of an irregular blob: a disc whose radius is modulated by smooth noise."""
    yy, xx = grid(size)
    noise = smooth_noise(rng, size, max(4.0, radius / 2))
    r = np.hypot(yy - cy, xx - cx) / radius
    return r < 1.0 + roughness * (noise - 0.5) * 2


def ellipse_radius(
    size: int,
    cx: float,
    cy: float,
    a: float,
    b: float,
    theta: float,
    wobble: np.ndarray | None = None,
    box: tuple[slice, slice] | None = None,
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Normalised elliptical radius (1.0 on the ellipse) over the ellipse's bounding box only.

    Returns (box, r): `box` indexes the canvas, `r` has the box's shape; `wobble` (a canvas-sized map of
    values around 1) makes the outline irregular; `box` given: r over that box instead (an ellipse inside
    another's box). Working on the box keeps many small glands cheap.
    """
    if box is None:
        m = max(a, b) * (1.6 if wobble is not None else 1.05)
        y0, y1 = max(0, int(cy - m)), min(size, int(np.ceil(cy + m)) + 1)
        x0, x1 = max(0, int(cx - m)), min(size, int(np.ceil(cx + m)) + 1)
        box = (slice(y0, max(y0, y1)), slice(x0, max(x0, x1)))
    yy, xx = grid(size)
    c, s = np.cos(theta), np.sin(theta)
    dx, dy = xx[box] - cx, yy[box] - cy
    u, v = (c * dx + s * dy) / a, (-s * dx + c * dy) / b
    r = np.sqrt(u * u + v * v)
    if wobble is not None:
        r = r / wobble[box]
    return box, r


def stamp_nuclei(
    size: int,
    ys: np.ndarray,
    xs: np.ndarray,
    sigma: float,
    weights: np.ndarray | None = None,
    sharpness: float = 4.0,
) -> np.ndarray:
    """Density map in [0, 1] of round nuclei of radius about 1.2*sigma at (ys, xs).

    Impulses are blurred with a Gaussian (scaled so an isolated nucleus peaks at its weight) then passed
    through
    a soft threshold, which gives discs with crisp edges at the cost of two array passes.
    """
    imp = np.zeros((size, size), np.float32)
    ys = np.asarray(ys)
    xs = np.asarray(xs)
    keep = (ys >= 0) & (ys < size) & (xs >= 0) & (xs < size)
    w = np.ones(keep.sum(), np.float32) if weights is None else np.asarray(weights, np.float32)[keep]
    np.add.at(imp, (ys[keep].astype(np.intp), xs[keep].astype(np.intp)), w)
    blur = ndimage.gaussian_filter(imp, sigma, mode="constant", truncate=3.0) * np.float32(
        2 * np.pi * sigma**2
    )
    return np.clip((blur - 0.3) * sharpness, 0.0, 1.0)


def jittered_grid(
    rng: np.random.Generator, size: int, spacing: float, jitter: float = 0.45, keep: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Points on a square lattice with random jitter and random dropout (dense cell packings)."""
    coords = np.arange(spacing / 2, size, spacing, dtype=np.float32)
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    ys = ys.ravel() + rng.uniform(-jitter, jitter, ys.size).astype(np.float32) * spacing
    xs = xs.ravel() + rng.uniform(-jitter, jitter, xs.size).astype(np.float32) * spacing
    sel = rng.random(ys.size) < keep
    return ys[sel], xs[sel]


def points_in(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bool per point: whether (ys, xs) falls inside `mask`."""
    size = mask.shape[0]
    yi = np.clip(ys.astype(np.intp), 0, size - 1)
    xi = np.clip(xs.astype(np.intp), 0, size - 1)
    return mask[yi, xi]
