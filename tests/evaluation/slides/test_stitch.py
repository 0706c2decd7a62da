import numpy as np
import pytest

from pixelcam.errors import ConfigError
from pixelcam.evaluation.slides.stitch import Stitcher, blend_window
from pixelcam.evaluation.slides.tiles import TileGrid


def _grid():
    return TileGrid(level=0, width=200, height=120, downsample=1.0, tile=64, overlap=16)


def test_constant_tiles_stitch_to_the_constant_on_tissue_and_zero_elsewhere(tmp_path):
    g = _grid()
    s = Stitcher(g, stride=8, workdir=tmp_path)
    for x, y in g.all_positions():
        s.add(x, y, np.full((8, 8), 0.6, np.float32))
    tissue = np.ones((12, 20), bool)
    tissue[:, :5] = False  # left quarter is glass (mask at 10 slide px per pixel)
    out = s.finish(np.zeros(s.shape, np.uint8), tissue, tissue_scale=10.0)
    assert out.shape == (15, 25)
    left = (np.arange(25) + 0.5) * 8 < 50
    assert np.all(out[:, left] == 0) and np.all(out[:, ~left] == round(0.6 * 255))


def test_overlap_cross_fades_and_order_does_not_matter(tmp_path):
    g = TileGrid(level=0, width=112, height=64, downsample=1.0, tile=64, overlap=16)  # two tiles side by side
    tissue = np.ones((8, 14), bool)
    outs = []
    for k, order in enumerate(([0, 1], [1, 0])):
        s = Stitcher(g, stride=8, workdir=tmp_path / str(k))
        tiles = [(0, np.zeros((8, 8), np.float32)), (48, np.ones((8, 8), np.float32))]
        for i in order:
            s.add(tiles[i][0], 0, tiles[i][1])
        outs.append(s.finish(np.zeros(s.shape, np.uint8), tissue, 8.0))
    np.testing.assert_array_equal(outs[0], outs[1])
    row = outs[0][4].astype(int)
    assert row[0] == 0 and row[-1] == 255 and 0 < row[6] < 255 and np.all(np.diff(row) >= 0)


def test_blend_window_ramps_over_the_overlap_only():
    w = blend_window(8, 2)
    assert w.shape == (8, 8) and w[4, 4] == 1.0 and w[0, 4] < w[1, 4] < w[2, 4] == 1.0
    assert np.all(blend_window(8, 0) == 1.0)


def test_stride_must_divide_tile_and_overlap(tmp_path):
    with pytest.raises(ConfigError, match="heatmap-stride"):
        Stitcher(_grid(), stride=12, workdir=tmp_path)


def test_a_heatmap_larger_than_the_free_disk_is_refused_before_anything_is_made(tmp_path):
    from pixelcam.errors import SlideError

    g = TileGrid(level=0, width=10**7, height=10**7, downsample=1.0, tile=64, overlap=16)
    with pytest.raises(SlideError, match=r"needs \d+\.\d GiB of working space in .*, \d+\.\d GiB free"):
        Stitcher(g, stride=8, workdir=tmp_path / "work")
    assert not (tmp_path / "work").exists()
