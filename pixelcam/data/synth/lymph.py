"""`synth-lymph`: lymph-node-like tissue, densely packed small dark lymphocytes with pale sinuses; cancer = a
metastasis-like cohesive cluster of large pale (vesicular) nuclei with nucleoli and pink cytoplasm (ROI),
which
is *paler* than the background. Decoys in both classes: germinal centres (pale, larger but regular nuclei)."""

from __future__ import annotations

import numpy as np

from pixelcam.data.synth.render import Stain, blob_mask, jittered_grid, points_in, smooth_noise, stamp_nuclei

# A bluer hematoxylin and a more purple eosin than synth-colon: a different lab's stain protocol.
STAIN = Stain(hematoxylin=(0.52, 0.80, 0.24), eosin=(0.18, 0.92, 0.30), background=(0.04, 0.05, 0.03))


def render_lymph(rng: np.random.Generator, size: int, cancer: bool) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 (S, S, 3), ROI mask uint8 (S, S)) of one synthetic lymph-node tile."""
    u = size / 128.0
    h = 0.10 + 0.08 * smooth_noise(rng, size, 8 * u)
    e = 0.22 + 0.18 * smooth_noise(rng, size, 6 * u)
    sinus = smooth_noise(rng, size, 22 * u) > rng.uniform(0.68, 0.8)
    e[sinus] = 0.12
    h[sinus] = 0.05

    roi = np.zeros((size, size), bool)
    if cancer:
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        roi = blob_mask(rng, size, cx, cy, rng.uniform(0.18, 0.34) * size, roughness=0.35)

    centre = np.zeros((size, size), bool)
    if rng.random() < 0.65:  # germinal centre: pale, medium regular nuclei, benign
        gy, gx = rng.uniform(0.2, 0.8, 2) * size
        centre = blob_mask(rng, size, gx, gy, rng.uniform(13, 22) * u, roughness=0.25) & ~roi
        e[centre] += 0.22

    ly, lx = jittered_grid(rng, size, 3.5 * u, jitter=0.42, keep=0.9)
    in_sinus = points_in(sinus, ly, lx)
    in_centre = points_in(centre, ly, lx)
    keep = ~points_in(roi, ly, lx) & (~in_sinus | (rng.random(ly.size) < 0.12))
    keep &= ~in_centre | (rng.random(ly.size) < 0.3)
    h += 1.6 * stamp_nuclei(size, ly[keep], lx[keep], 0.95 * u)

    if centre.any():
        cy_, cx_ = jittered_grid(rng, size, 5.8 * u, jitter=0.35)
        sel = points_in(centre, cy_, cx_)
        h += 0.8 * stamp_nuclei(size, cy_[sel], cx_[sel], 1.5 * u, sharpness=3.0)

    if cancer:
        e[roi] = 0.48 + 0.1 * smooth_noise(rng, size, 5 * u)[roi]  # abundant pink cytoplasm
        h[roi] = 0.12
        ty, tx = jittered_grid(rng, size, 7.0 * u, jitter=0.3)
        sel = points_in(roi, ty, tx)
        ty, tx = ty[sel], tx[sel]
        h += 0.62 * stamp_nuclei(size, ty, tx, 1.9 * u, sharpness=2.5)  # large vesicular nuclei
        oy = ty + rng.uniform(-0.6, 0.6, ty.size) * u
        ox = tx + rng.uniform(-0.6, 0.6, tx.size) * u
        h += 1.3 * stamp_nuclei(size, oy, ox, 0.7 * u)  # nucleoli
    return STAIN.render(h, e, rng), roi.astype(np.uint8)
