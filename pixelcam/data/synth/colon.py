"""`synth-colon`, the GlaS stand-in: colon-like mucosa, regular glands in pink stroma; cancer = a region of
crowded, irregular, cribriform glands with stratified, enlarged nuclei. As in GlaS, the ROI is the glands in
both classes (benign glands and tumour glands alike): the class is the glandular architecture, not whether
there are glands. Decoys: lymphoid aggregates (darker than the tumour, not glands) in both classes."""

from __future__ import annotations

import numpy as np

from pixelcam.data.synth.render import (
    Stain,
    blob_mask,
    ellipse_radius,
    jittered_grid,
    points_in,
    smooth_noise,
    stamp_nuclei,
)

STAIN = Stain(hematoxylin=(0.65, 0.72, 0.30), eosin=(0.06, 1.00, 0.12))


def _gland_nuclei(
    rng: np.random.Generator,
    cx: float,
    cy: float,
    a: float,
    b: float,
    theta: float,
    r_lo: float,
    r_hi: float,
    count: int,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` nucleus centres in the elliptical band r_lo..r_hi of a gland."""
    t = rng.uniform(0, 2 * np.pi, count)
    rr = rng.uniform(r_lo, r_hi, count)
    c, s = np.cos(theta), np.sin(theta)
    u, v = rr * a * np.cos(t), rr * b * np.sin(t)
    return cy + s * u + c * v, cx + c * u - s * v


def render_colon(rng: np.random.Generator, size: int, cancer: bool) -> tuple[np.ndarray, np.ndarray]:  # noqa: PLR0915 - rewritten with issue 28
    """(RGB uint8 (S, S, 3), gland mask uint8 (S, S)) of one synthetic colon tile (glands in both classes)."""
    u = size / 128.0
    h = 0.06 + 0.06 * smooth_noise(rng, size, 6 * u)
    e = 0.28 + 0.30 * smooth_noise(rng, size, 4 * u) * smooth_noise(rng, size, 12 * u)
    small_y, small_x, big_y, big_x = [], [], [], []
    n = int(22 * u * u)
    small_y.append(rng.uniform(0, size, n))  # stromal nuclei
    small_x.append(rng.uniform(0, size, n))

    roi = np.zeros((size, size), bool)  # the tumour region (where tumour glands replace normal ones)
    glands = np.zeros((size, size), bool)  # the ROI: every gland, normal or tumour, lumen included
    if cancer:
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        roi = blob_mask(rng, size, cx, cy, rng.uniform(0.2, 0.36) * size, roughness=0.45)

    # Normal glands on a jittered lattice; those whose centre lies in the ROI are replaced by tumour.
    gys, gxs = jittered_grid(rng, size + 24 * u, 40 * u, jitter=0.2)
    gys, gxs = gys - 12 * u, gxs - 12 * u
    solid_left = 1 if rng.random() < 0.35 else 0
    outside = ~points_in(roi, gys, gxs)
    for gy, gx in zip(gys[outside], gxs[outside]):
        a, b = rng.uniform(14, 18) * u, rng.uniform(10, 13) * u
        theta = rng.uniform(0, np.pi)
        box, r = ellipse_radius(size, gx, gy, a, b, theta)
        solid = solid_left > 0  # tangential cut: a nest of epithelium without lumen
        solid_left -= solid
        lumen_frac = 0.0 if solid else rng.uniform(0.3, 0.42)
        epi = (r < 1.0) & (r >= lumen_frac)
        glands[box] |= r < 1.0
        e[box][epi] = 0.20 + 0.08 * rng.random()  # pale mucin-rich epithelium (goblet cells)
        h[box][epi] += 0.05
        if lumen_frac > 0:
            lumen = r < lumen_frac
            e[box][lumen] = 0.06
            h[box][lumen] = 0.03
            count = int(np.pi * (a + b) / (3.0 * u))
            ny, nx = _gland_nuclei(rng, gx, gy, a, b, theta, 0.84, 0.93, count)
        else:
            count = int(np.pi * a * b / (22 * u * u))
            ny, nx = _gland_nuclei(rng, gx, gy, a, b, theta, 0.05, 0.92, count)
        small_y.append(ny)
        small_x.append(nx)

    if cancer:
        e[roi] = 0.30 + 0.2 * e[roi]  # desmoplastic stroma between tumour glands
        wobble = 1.0 + 0.5 * (smooth_noise(rng, size, 5 * u) - 0.5)
        tys, txs = jittered_grid(rng, size, 21 * u, jitter=0.3)
        inside = points_in(roi, tys, txs)
        for ty, tx in zip(tys[inside], txs[inside]):
            a, b = rng.uniform(8, 12) * u, rng.uniform(6, 9) * u
            theta = rng.uniform(0, np.pi)
            box, r = ellipse_radius(size, tx, ty, a, b, theta, wobble)
            epi = (r < 1.0) & roi[box]
            glands[box] |= epi
            e[box][epi] = 0.42
            h[box][epi] += 0.10
            for _ in range(rng.integers(0, 4)):  # cribriform: small punched-out lumens
                lbox, lr = ellipse_radius(
                    size,
                    tx + rng.uniform(-0.45, 0.45) * a,
                    ty + rng.uniform(-0.45, 0.45) * b,
                    2.0 * u,
                    1.6 * u,
                    0.0,
                )
                lum = (lr < 1.0) & epi[
                    lbox[0].start - box[0].start : lbox[0].stop - box[0].start,
                    lbox[1].start - box[1].start : lbox[1].stop - box[1].start,
                ]
                e[lbox][lum] = 0.06
                h[lbox][lum] = 0.03
            count = int(np.pi * a * b / (16 * u * u))
            ny, nx = _gland_nuclei(rng, tx, ty, a, b, theta, 0.1, 0.95, count)
            big_y.append(ny)
            big_x.append(nx)

    if rng.random() < 0.5:  # lymphoid aggregate: the darkest structure, and benign
        ay, ax = rng.uniform(0.15, 0.85, 2) * size
        agg = blob_mask(rng, size, ax, ay, rng.uniform(9, 16) * u, roughness=0.3) & ~roi
        glands &= ~agg  # the aggregate covers what lay beneath it
        ly, lx = jittered_grid(rng, size, 3.0 * u, jitter=0.4)
        sel = points_in(agg, ly, lx)
        h[agg] += 0.3
        e[agg] = 0.18
        small_y.append(ly[sel])
        small_x.append(lx[sel])

    h += 1.45 * stamp_nuclei(size, np.concatenate(small_y), np.concatenate(small_x), 1.0 * u)
    if big_y:
        # enlarged, pleomorphic (two sizes), vesicular-ish nuclei: larger but not darker than normal ones
        ty, tx = np.concatenate(big_y), np.concatenate(big_x)
        pleo = rng.random(ty.size) < 0.5
        h += 0.95 * stamp_nuclei(size, ty[pleo], tx[pleo], 1.9 * u, sharpness=3.0)
        h += 1.05 * stamp_nuclei(size, ty[~pleo], tx[~pleo], 1.45 * u, sharpness=3.0)
    return STAIN.render(h, e, rng), glands.astype(np.uint8)
