"""`synth-colon`, the GlaS stand-in: colon-like mucosa, regular glands in pink stroma; cancer = a region of
crowded, irregular, cribriform glands with stratified, enlarged nuclei. As in GlaS, the ROI is the glands in
both classes (benign glands and tumour glands alike): the class is the glandular architecture, not whether
there are glands. Decoys: lymphoid aggregates (darker than the tumour, not glands) in both classes."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class _Tile:
    """Density maps, masks and nucleus centres of one tile as it is drawn (u: pixels per unit, size/128)."""

    size: int
    u: float
    h: np.ndarray
    e: np.ndarray
    roi: np.ndarray  # the tumour region (where tumour glands replace normal ones)
    glands: np.ndarray  # the ROI: every gland, normal or tumour, lumen included
    small_y: list = field(default_factory=list)
    small_x: list = field(default_factory=list)
    big_y: list = field(default_factory=list)
    big_x: list = field(default_factory=list)


def render_colon(rng: np.random.Generator, size: int, cancer: bool) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 (S, S, 3), gland mask uint8 (S, S)) of one synthetic colon tile (glands in both classes)."""
    u = size / 128.0
    h = 0.06 + 0.06 * smooth_noise(rng, size, 6 * u)
    e = 0.28 + 0.30 * smooth_noise(rng, size, 4 * u) * smooth_noise(rng, size, 12 * u)
    t = _Tile(size, u, h, e, np.zeros((size, size), bool), np.zeros((size, size), bool))
    n = int(22 * u * u)
    t.small_y.append(rng.uniform(0, size, n))  # stromal nuclei
    t.small_x.append(rng.uniform(0, size, n))
    if cancer:
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        t.roi = blob_mask(rng, size, cx, cy, rng.uniform(0.2, 0.36) * size, roughness=0.45)
    _normal_glands(rng, t)
    if cancer:
        _tumour_glands(rng, t)
    if rng.random() < 0.5:  # lymphoid aggregate: the darkest structure, and benign
        _lymphoid_aggregate(rng, t)
    _stamp(rng, t)
    return STAIN.render(t.h, t.e, rng), t.glands.astype(np.uint8)


def _normal_glands(rng: np.random.Generator, t: _Tile) -> None:
    """Normal glands on a jittered lattice; those whose centre lies in the tumour region are left out."""
    size, u, e, h = t.size, t.u, t.e, t.h
    gys, gxs = jittered_grid(rng, size + 24 * u, 40 * u, jitter=0.2)
    gys, gxs = gys - 12 * u, gxs - 12 * u
    solid_left = 1 if rng.random() < 0.35 else 0
    outside = ~points_in(t.roi, gys, gxs)
    for gy, gx in zip(gys[outside], gxs[outside]):
        a, b = rng.uniform(14, 18) * u, rng.uniform(10, 13) * u
        theta = rng.uniform(0, np.pi)
        box, r = ellipse_radius(size, gx, gy, a, b, theta)
        solid = solid_left > 0  # tangential cut: a nest of epithelium without lumen
        solid_left -= solid
        lumen_frac = 0.0 if solid else rng.uniform(0.3, 0.42)
        epi = (r < 1.0) & (r >= lumen_frac)
        t.glands[box] |= r < 1.0
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
        t.small_y.append(ny)
        t.small_x.append(nx)


def _tumour_glands(rng: np.random.Generator, t: _Tile) -> None:
    """Crowded, irregular, cribriform tumour glands with enlarged nuclei over the tumour region, in
    desmoplastic stroma."""
    size, u, e, h = t.size, t.u, t.e, t.h
    e[t.roi] = 0.30 + 0.2 * e[t.roi]  # desmoplastic stroma between tumour glands
    wobble = 1.0 + 0.5 * (smooth_noise(rng, size, 5 * u) - 0.5)
    tys, txs = jittered_grid(rng, size, 21 * u, jitter=0.3)
    inside = points_in(t.roi, tys, txs)
    for ty, tx in zip(tys[inside], txs[inside]):
        a, b = rng.uniform(8, 12) * u, rng.uniform(6, 9) * u
        theta = rng.uniform(0, np.pi)
        box, r = ellipse_radius(size, tx, ty, a, b, theta, wobble)
        epi = (r < 1.0) & t.roi[box]
        t.glands[box] |= epi
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
        t.big_y.append(ny)
        t.big_x.append(nx)


def _lymphoid_aggregate(rng: np.random.Generator, t: _Tile) -> None:
    """A lymphoid aggregate: the darkest structure, benign, not a gland (outside the tumour region)."""
    size, u = t.size, t.u
    ay, ax = rng.uniform(0.15, 0.85, 2) * size
    agg = blob_mask(rng, size, ax, ay, rng.uniform(9, 16) * u, roughness=0.3) & ~t.roi
    t.glands &= ~agg  # the aggregate covers what lay beneath it
    ly, lx = jittered_grid(rng, size, 3.0 * u, jitter=0.4)
    sel = points_in(agg, ly, lx)
    t.h[agg] += 0.3
    t.e[agg] = 0.18
    t.small_y.append(ly[sel])
    t.small_x.append(lx[sel])


def _stamp(rng: np.random.Generator, t: _Tile) -> None:
    """The nuclei: small dark stromal, glandular and lymphoid ones; enlarged pleomorphic tumour ones."""
    size, u = t.size, t.u
    t.h += 1.45 * stamp_nuclei(size, np.concatenate(t.small_y), np.concatenate(t.small_x), 1.0 * u)
    if t.big_y:
        # enlarged, pleomorphic (two sizes), vesicular-ish nuclei: larger but not darker than normal ones
        ty, tx = np.concatenate(t.big_y), np.concatenate(t.big_x)
        pleo = rng.random(ty.size) < 0.5
        t.h += 0.95 * stamp_nuclei(size, ty[pleo], tx[pleo], 1.9 * u, sharpness=3.0)
        t.h += 1.05 * stamp_nuclei(size, ty[~pleo], tx[~pleo], 1.45 * u, sharpness=3.0)
