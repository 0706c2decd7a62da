"""Tissue detection on a slide thumbnail: Otsu on the HSV saturation, holes filled, specks removed.

Glass and background are bright and grey (low saturation); stained tissue is coloured. Otsu's threshold
(Otsu 1979: the cut that maximises the between-class variance of the histogram) separates the two without a
hand-set level; a floor keeps a blank slide (one class only) from being split along its noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation in [0, 1] of a uint8 (H, W, 3) image: (max - min) / max, 0 where max is 0."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]  # elementwise over the channels: numpy's reduction over
    hi = np.maximum(np.maximum(r, g), b)  # a last axis of 3 is 10x slower, and so is a float copy first
    lo = np.minimum(np.minimum(r, g), b)
    hi_f = hi.astype(np.float32)
    return np.where(hi > 0, (hi_f - lo) / np.maximum(hi_f, 1e-6), 0.0).astype(np.float32)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of `values` in [0, 1]: the bin edge maximising w0 * w1 * (mu0 - mu1)^2."""
    hist, edges = np.histogram(values.ravel(), bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    between[(w0 == 0) | (w1 == 0)] = -1.0
    return float(centers[int(np.argmax(between))])


def tissue_mask(
    rgb: np.ndarray,
    min_saturation: float = 0.05,
    min_object_fraction: float = 1e-4,
    max_hole_fraction: float = 0.01,
) -> np.ndarray:
    """bool (H, W): tissue pixels of a thumbnail. Saturation above max(Otsu, `min_saturation`), holes smaller
    than `max_hole_fraction` of the image filled (lumens, fat; a larger one is glass the section wraps
    around, and stays out), connected components smaller than `min_object_fraction` dropped (dust)."""
    sat = saturation(rgb)
    mask = ndimage.binary_closing(sat > max(otsu_threshold(sat), min_saturation), iterations=2)
    holes, count = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
    if count:
        sizes = ndimage.sum(holes > 0, holes, index=np.arange(1, count + 1))
        mask = mask | np.concatenate([[False], sizes < max_hole_fraction * mask.size])[holes]
    labels, count = ndimage.label(mask)
    if count:
        sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
        keep = np.concatenate([[False], sizes >= min_object_fraction * mask.size])
        mask = keep[labels]
    return mask
