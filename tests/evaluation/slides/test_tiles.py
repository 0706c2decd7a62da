import numpy as np
import pytest

from pixelcam.errors import ConfigError
from pixelcam.evaluation.slides.tiles import TileGrid


def test_grid_covers_the_level_with_the_given_overlap():
    g = TileGrid(level=1, width=1000, height=600, downsample=2.0, tile=224, overlap=32)
    pos = g.all_positions()
    xs, ys = np.unique(pos[:, 0]), np.unique(pos[:, 1])
    assert xs[0] == 0 and np.all(np.diff(xs) == 192) and xs[-1] + 224 >= 1000 and xs[-1] < 1000
    assert ys[-1] + 224 >= 600 and len(pos) == len(xs) * len(ys)
    np.testing.assert_array_equal(g.level0(pos[:2]), pos[:2] * 2)
    assert len(TileGrid(0, 100, 50, 1.0, tile=224, overlap=32).all_positions()) == 1  # smaller than a tile


def test_tissue_fraction_matches_a_brute_force_count():
    rng = np.random.default_rng(0)
    mask = rng.random((64, 80)) < 0.3
    mask[:, 40:] = False
    g = TileGrid(level=0, width=640, height=512, downsample=1.0, tile=64, overlap=16)
    pos, frac = g.tissue_positions(mask, mask_scale=8.0, min_tissue=0.0)
    assert len(pos) == len(g.all_positions())
    for (x, y), f in zip(pos, frac):
        x0, y0 = x // 8, y // 8
        ref = mask[y0 : y0 + 8, x0 : x0 + 8].sum() / 64.0  # a 64 px tile = 8x8 mask pixels (past the edge: 0)
        assert f == pytest.approx(ref)
    kept, _ = g.tissue_positions(mask, 8.0, min_tissue=0.2)
    assert len(kept) and kept[:, 0].max() < 320 + 64  # nothing right of the empty half


def test_bad_geometry_is_refused():
    with pytest.raises(ConfigError, match="overlap"):
        TileGrid(0, 100, 100, 1.0, tile=64, overlap=64)
