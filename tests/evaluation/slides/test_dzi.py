"""Deep Zoom pyramids against the format's definition: level L = ceil(log2(max side)), level l is the image
divided by 2^(L - l) rounded up, cut into 256 px tiles named <column>_<row>."""

import math
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

from pixelcam.evaluation.slides.dzi import XMLNS, level_size, max_level, write_dzi


def test_levels_follow_the_deep_zoom_definition():
    assert max_level(2220, 2967) == 12 and max_level(4096, 10) == 12 and max_level(4097, 10) == 13
    assert max_level(1, 1) == 0
    assert level_size(2220, 2967, 12) == (2220, 2967)
    assert level_size(2220, 2967, 11) == (1110, 1484)  # 2967 / 2 = 1483.5, rounded up
    assert level_size(2220, 2967, 0) == (1, 1)


def test_write_dzi_tiles_every_level_and_describes_it(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 520, 3), dtype=np.uint8)
    desc = write_dzi(image, tmp_path, "slide")
    assert (
        desc["Image"]["Size"] == {"Width": "520", "Height": "300"} and desc["Image"]["Url"] == "slide_files/"
    )
    top = max_level(520, 300)
    assert sorted(int(p.name) for p in (tmp_path / "slide_files").iterdir()) == list(range(top + 1))
    for level in range(top + 1):
        w, h = level_size(520, 300, level)
        tiles = {p.name for p in (tmp_path / "slide_files" / str(level)).iterdir()}
        assert tiles == {
            f"{c}_{r}.jpeg" for c in range(math.ceil(w / 256)) for r in range(math.ceil(h / 256))
        }
    with Image.open(tmp_path / "slide_files" / str(top) / "2_1.jpeg") as tile:
        assert tile.size == (520 - 512, 300 - 256)  # the last column and row are cut to the image
    root = ET.parse(tmp_path / "slide.dzi").getroot()
    assert root.tag == f"{{{XMLNS}}}Image" and root.get("TileSize") == "256" and root.get("Format") == "jpeg"
    assert root[0].get("Width") == "520" and root[0].get("Height") == "300"


def test_rgba_layers_keep_their_transparency(tmp_path):
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[10:20, 10:20] = (255, 0, 0, 255)
    write_dzi(rgba, tmp_path, "heat", "png")
    with Image.open(tmp_path / "heat_files" / str(max_level(60, 40)) / "0_0.png") as tile:
        arr = np.asarray(tile)
    assert arr.shape == (40, 60, 4) and arr[0, 0, 3] == 0 and tuple(arr[15, 15]) == (255, 0, 0, 255)
