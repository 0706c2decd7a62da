import json

import numpy as np
import tiffslide

from pixelcam.evaluation.slides.heatmap import pyramid, write_heatmap_tiff


def test_heatmap_tiff_reads_back_in_tiffslide_with_its_geometry(tmp_path):
    rng = np.random.default_rng(0)
    heat = rng.integers(0, 256, (300, 520), dtype=np.uint8)
    path = tmp_path / "heatmap.tif"
    write_heatmap_tiff(path, heat, mpp=8.0, description={"level0_per_pixel": 16})
    s = tiffslide.TiffSlide(path)
    assert s.dimensions == (520, 300) and float(s.properties["tiffslide.mpp-x"]) == 8.0
    assert s.level_count == len(pyramid(heat)) + 1 >= 3
    assert s.level_dimensions[1] == (260, 150)
    back = np.asarray(s.read_region((0, 0), 0, (520, 300), as_array=True))[..., 0]
    np.testing.assert_array_equal(back, heat)  # deflate: lossless
    lvl1 = np.asarray(s.read_region((0, 0), 1, (260, 150), as_array=True))[..., 0].astype(int)
    ref = heat.reshape(150, 2, 260, 2).astype(int).mean((1, 3))
    assert np.abs(lvl1 - ref).max() <= 1  # 2x2 mean, rounded
    assert json.loads(s.properties["tiff.ImageDescription"])["pixelcam"]["level0_per_pixel"] == 16
