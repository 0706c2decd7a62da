"""`synth-colon`, the GlaS stand-in: a crop of colon wall, glandular mucosa beside submucosa.

As in GlaS, the ROI is every gland (epithelium and lumen) in both classes, and the class is the glands'
architecture throughout the tile: a benign tile's glands are regular crypts (round lumen, pale goblet-cell
mucin, one row of small basal nuclei), a malignant tile's are irregular and cribriform (basophilic epithelium
crowded with stratified, enlarged nuclei, dirty necrosis in the lumen). The glands are large and packed in
the mucosa, as GlaS's are at 224 px, so a CAM on a stride-32 feature grid can find them. The stroma
(cellular lamina propria between glands; collagen, infiltrates, lymphoid aggregates and fat in the
submucosa) is drawn the same way in both classes, so the class evidence lies in the glands; its dark
look-alikes and the pale benign glands keep the ROI from being "the darkest pixels".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from pixelcam.data.synth.render import (
    Stain,
    blob_mask,
    ellipse_radius,
    grid,
    jittered_grid,
    points_in,
    smooth_noise,
    stamp_nuclei,
)

STAIN = Stain(hematoxylin=(0.65, 0.72, 0.30), eosin=(0.06, 1.00, 0.12))


@dataclass
class _Tile:
    """Density maps, the gland mask and nucleus centres of one tile as it is drawn (u: pixels per unit,
    size/128)."""

    size: int
    u: float
    h: np.ndarray
    e: np.ndarray
    glands: np.ndarray  # the ROI: every gland, lumen included
    nuclei: dict[str, list] = field(default_factory=dict)
    # where the tile-wide textures go once every gland is drawn: goblet mucin, tumour epithelium, necrosis
    goblet: np.ndarray = field(init=False)
    epithelium: np.ndarray = field(init=False)
    necrosis: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        shape = (self.size, self.size)
        self.goblet, self.epithelium, self.necrosis = (np.zeros(shape, bool) for _ in range(3))

    def add(self, kind: str, ys: np.ndarray, xs: np.ndarray) -> None:
        self.nuclei.setdefault(kind, []).append((ys, xs))


@dataclass(frozen=True)
class _Gland:
    cy: float
    cx: float
    a: float
    b: float
    theta: float


def render_colon(rng: np.random.Generator, size: int, cancer: bool) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 (S, S, 3), gland mask uint8 (S, S)) of one synthetic colon tile (glands in both classes)."""
    u = size / 128.0
    h = 0.06 + 0.05 * smooth_noise(rng, size, 6 * u)
    e = 0.30 + 0.22 * smooth_noise(rng, size, 5 * u) * smooth_noise(rng, size, 14 * u)
    t = _Tile(size, u, h, e, np.zeros((size, size), bool))
    mucosa = _mucosa(rng, size, u)
    draw = _tumour_gland if cancer else _normal_gland
    for g in _place_glands(rng, size, u, mucosa):
        draw(rng, t, g)
    _gland_textures(rng, t)
    _lamina_propria(rng, t, mucosa)
    _submucosa(rng, t, mucosa)
    _stamp(t)
    return STAIN.render(t.h, t.e, rng), t.glands.astype(np.uint8)


def _mucosa(rng: np.random.Generator, size: int, u: float) -> np.ndarray:
    """The glandular mucosa: the part of the tile on one side of a wavy line (45-80 % of the tile); the rest
    is submucosa, stroma without glands (a crop of a slide shows both)."""
    yy, xx = grid(size)
    phi = rng.uniform(0, 2 * np.pi)
    d = (xx - size / 2) * np.cos(phi) + (yy - size / 2) * np.sin(phi)
    d = d + 14 * u * (smooth_noise(rng, size, 40 * u) - 0.5)
    return d < np.quantile(d, rng.uniform(0.45, 0.8))


def _place_glands(rng: np.random.Generator, size: int, u: float, mucosa: np.ndarray) -> list[_Gland]:
    """Large glands packed on a jittered lattice over the mucosa, a thin band of stroma between them."""
    spacing = rng.uniform(42, 52) * u
    ys, xs = jittered_grid(rng, size + spacing, spacing, jitter=0.12)
    oy, ox = rng.uniform(0, spacing, 2)  # the lattice's phase: glands anywhere, cut at the tile's border
    ys, xs = ys - oy, xs - ox
    keep = points_in(mucosa, ys, xs) & (np.minimum(ys, xs) > -0.3 * spacing)
    keep &= np.maximum(ys, xs) < size + 0.3 * spacing
    glands = []
    for cy, cx in zip(ys[keep], xs[keep]):
        a = rng.uniform(0.5, 0.56) * spacing
        glands.append(_Gland(cy, cx, a, a * rng.uniform(0.86, 0.98), rng.uniform(0, np.pi)))
    return glands


def _lamina_propria(rng: np.random.Generator, t: _Tile, mucosa: np.ndarray) -> None:
    """The stroma between glands, the same in both classes: cellular (lymphocytes, plasma cells)."""
    size, u = t.size, t.u
    ly, lx = jittered_grid(rng, size, 4.4 * u, jitter=0.45, keep=0.6)
    sel = points_in(mucosa & ~t.glands, ly, lx)
    t.add("small", ly[sel], lx[sel])


def _submucosa(rng: np.random.Generator, t: _Tile, mucosa: np.ndarray) -> None:
    """The rest of the tile, the same in both classes: dense collagen with sparse fibroblasts, patches of
    inflammatory infiltrate, sometimes a lymphoid aggregate (dark, not glands) or fat (pale, not lumen)."""
    size, u = t.size, t.u
    sub = ~mucosa & ~t.glands
    t.e[sub] += 0.18 * smooth_noise(rng, size, 3 * u)[sub] + 0.1
    n = int(25 * u * u)
    fy, fx = rng.uniform(0, size, n), rng.uniform(0, size, n)
    sel = points_in(sub, fy, fx)
    t.add("small", fy[sel], fx[sel])
    infiltrate = (smooth_noise(rng, size, 20 * u) > rng.uniform(0.55, 0.75)) & ~t.glands
    ly, lx = jittered_grid(rng, size, 3.4 * u, jitter=0.45, keep=0.85)
    sel = points_in(infiltrate, ly, lx)
    t.add("small", ly[sel], lx[sel])
    if rng.random() < 0.45:
        ay, ax = rng.uniform(0.1, 0.9, 2) * size
        agg = blob_mask(rng, size, ax, ay, rng.uniform(10, 18) * u, roughness=0.3) & ~t.glands
        ly, lx = jittered_grid(rng, size, 3.0 * u, jitter=0.4)
        sel = points_in(agg, ly, lx)
        t.h[agg] += 0.25
        t.e[agg] = 0.2
        t.add("small", ly[sel], lx[sel])
    if rng.random() < 0.45:
        _fat(rng, t, sub)


def _fat(rng: np.random.Generator, t: _Tile, where: np.ndarray) -> None:
    """Adipocytes: large empty polygons with thin pink membranes (as pale as a lumen, and not a gland); the
    membranes are where a pixel's two nearest cell centres are about as near."""
    size, u = t.size, t.u
    fy, fx = rng.uniform(0.1, 0.9, 2) * size
    lobule = blob_mask(rng, size, fx, fy, rng.uniform(14, 26) * u, roughness=0.3) & where
    if not lobule.any():
        return
    cy, cx = jittered_grid(rng, size, 9 * u, jitter=0.3)
    py, px = np.nonzero(lobule)
    dist, _ = cKDTree(np.column_stack([cy, cx])).query(np.column_stack([py, px]), k=2)
    cell = dist[:, 1] - dist[:, 0] > 1.2 * u
    t.e[py[cell], px[cell]] = 0.03
    t.h[py[cell], px[cell]] = 0.02


def _normal_gland(rng: np.random.Generator, t: _Tile, g: _Gland) -> None:
    """A regular crypt in cross-section: round lumen, a band of pale goblet cells (mucin), one row of small
    basal nuclei; paler than the stroma on average."""
    box, r = ellipse_radius(t.size, g.cx, g.cy, g.a, g.b, g.theta)
    gland = r < 1.0
    t.glands[box] |= gland
    lumen = r < rng.uniform(0.25, 0.4)
    t.goblet[box] |= gland & ~lumen
    t.e[box][lumen] = 0.04
    t.h[box][lumen] = 0.02
    count = int(np.pi * (g.a + g.b) / (2.6 * t.u))
    t.add("small", *_ring(rng, g, 0.88, 0.95, count))


def _tumour_gland(rng: np.random.Generator, t: _Tile, g: _Gland) -> None:
    """An irregular malignant gland: basophilic epithelium around an irregular lumen (clear, or with dirty
    necrosis) and punched-out cribriform spaces; its crowded nuclei are placed by `_gland_textures`."""
    size, u = t.size, t.u
    wobble = 1.0 + 0.45 * (smooth_noise(rng, size, 9 * u) - 0.5)
    box, r = ellipse_radius(size, g.cx, g.cy, g.a, g.b, g.theta, wobble)
    gland = r < 1.0
    t.glands[box] |= gland
    lumen = r < rng.uniform(0.3, 0.45)
    epi = gland & ~lumen
    for _ in range(rng.integers(2, 6)):  # cribriform spaces, inside the gland's box
        _, hr = ellipse_radius(
            size,
            g.cx + rng.uniform(-0.6, 0.6) * g.a,
            g.cy + rng.uniform(-0.6, 0.6) * g.b,
            rng.uniform(2.0, 3.5) * u,
            rng.uniform(1.6, 2.8) * u,
            rng.uniform(0, np.pi),
            box=box,
        )
        epi &= hr >= 1.0
    t.e[box][gland] = 0.26
    t.h[box][gland] = 0.15
    t.e[box][gland & ~epi] = 0.05  # lumen and cribriform spaces: clear
    t.h[box][gland & ~epi] = 0.02
    t.epithelium[box] |= epi
    if rng.random() < 0.5:
        t.necrosis[box] |= lumen


def _gland_textures(rng: np.random.Generator, t: _Tile) -> None:
    """What fills the glands, drawn once over the tile: goblet vacuoles (paler round droplets with thin
    pink cytoplasm between them), crowded tumour nuclei, necrotic debris (pink, with nuclear dust)."""
    size, u = t.size, t.u
    if t.goblet.any():
        gy, gx = jittered_grid(rng, size, 4.0 * u, jitter=0.25)
        sel = points_in(t.goblet, gy, gx)
        drops = stamp_nuclei(size, gy[sel], gx[sel], 1.3 * u, sharpness=3.0)[t.goblet]
        t.e[t.goblet] = 0.22 - 0.14 * drops
        t.h[t.goblet] = 0.11 - 0.06 * drops  # mucin takes a little hematoxylin: pale blue-grey
    ny, nx = jittered_grid(rng, size, 3.9 * u, jitter=0.35, keep=0.9)
    sel = points_in(t.epithelium, ny, nx)
    t.add("big", ny[sel], nx[sel])
    t.e[t.necrosis] = 0.34
    t.h[t.necrosis] = 0.06
    dy, dx = jittered_grid(rng, size, 4.0 * u, jitter=0.45, keep=0.5)
    sel = points_in(t.necrosis, dy, dx)
    t.add("dust", dy[sel], dx[sel])


def _ring(
    rng: np.random.Generator, g: _Gland, r_lo: float, r_hi: float, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` points in the elliptical band r_lo..r_hi of a gland."""
    ang = rng.uniform(0, 2 * np.pi, count)
    rr = rng.uniform(r_lo, r_hi, count)
    c, s = np.cos(g.theta), np.sin(g.theta)
    du, dv = rr * g.a * np.cos(ang), rr * g.b * np.sin(ang)
    return g.cy + s * du + c * dv, g.cx + c * du - s * dv


def _stamp(t: _Tile) -> None:
    """Nuclei: small dark stromal, lymphoid and basal ones; enlarged pleomorphic tumour ones (larger, not
    darker); nuclear dust in necrosis."""
    size, u = t.size, t.u

    def cat(kind: str) -> tuple[np.ndarray, np.ndarray]:
        pts = t.nuclei.get(kind, [])
        if not pts:
            return np.zeros(0), np.zeros(0)
        return np.concatenate([p[0] for p in pts]), np.concatenate([p[1] for p in pts])

    t.h += 1.45 * stamp_nuclei(size, *cat("small"), 1.0 * u)
    ty, tx = cat("big")
    if ty.size:
        pleo = np.arange(ty.size) % 2 == 0
        t.h += 0.75 * stamp_nuclei(size, ty[pleo], tx[pleo], 1.9 * u, sharpness=3.0)
        t.h += 0.85 * stamp_nuclei(size, ty[~pleo], tx[~pleo], 1.5 * u, sharpness=3.0)
    t.h += 1.2 * stamp_nuclei(size, *cat("dust"), 0.6 * u)
