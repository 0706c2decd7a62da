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


def test_ome_tiff_heatmap_has_valid_ome_xml_a_pyramid_and_its_physical_size(tmp_path):
    import ome_types
    import tifffile

    from pixelcam.evaluation.slides.heatmap import CHANNEL, write_heatmap

    rng = np.random.default_rng(1)
    heat = rng.integers(0, 256, (300, 520), dtype=np.uint8)
    path = write_heatmap(tmp_path, "ome", heat, 7.98, {"level0_per_pixel": 16})
    assert path.name == "heatmap.ome.tif"
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and tif.is_bigtiff
        ome = ome_types.from_xml(tif.ome_metadata)  # parsed and validated against the OME schema
        (series,) = tif.series
        levels = [level.asarray() for level in series.levels]
        page = tif.pages[0]
        assert page.is_tiled and page.tilewidth == 256
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    (image,) = ome.images
    px = image.pixels
    assert (px.size_x, px.size_y, px.size_c, px.type.value) == (520, 300, 1, "uint8")
    assert px.physical_size_x == px.physical_size_y == 7.98 and px.physical_size_x_unit.value == "µm"
    assert px.channels[0].name == CHANNEL
    assert json.loads(image.description)["pixelcam"]["level0_per_pixel"] == 16
    np.testing.assert_array_equal(levels[0], heat)  # lossless
    assert [lv.shape for lv in levels] == [heat.shape] + [p.shape for p in pyramid(heat)]
    s = tiffslide.TiffSlide(path)  # the slide readers open it too, pyramid included
    assert s.level_count == len(levels) and s.dimensions == (520, 300)


def test_ome_tiff_without_a_physical_size_leaves_it_out(tmp_path):
    import ome_types
    import tifffile

    from pixelcam.evaluation.slides.heatmap import write_heatmap

    path = write_heatmap(tmp_path, "ome", np.zeros((70, 90), np.uint8), None, {})
    with tifffile.TiffFile(path) as tif:
        px = ome_types.from_xml(tif.ome_metadata).images[0].pixels
    assert px.physical_size_x is None and px.physical_size_y is None
