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


def test_each_level_is_the_one_above_averaged_over_2x2_blocks(tmp_path):
    # blocks of (0, 4, 8, 12): mean 6; (100, 100, 100, 104): mean 101; an odd last column (3 px wide): its
    # one-pixel block column averages that column alone
    image = np.zeros((2, 3, 3), np.uint8)
    image[:, :2] = np.array([[0, 4], [8, 12]], np.uint8)[..., None]
    image[:, 2] = np.array([100, 102], np.uint8)[:, None]
    write_dzi(image, tmp_path, "s", "png")  # png: lossless, the averages are read back exactly
    with Image.open(tmp_path / "s_files" / str(max_level(3, 2) - 1) / "0_0.png") as tile:
        arr = np.asarray(tile)
    assert arr.shape == (1, 2, 3) and arr[0, 0, 0] == 6 and arr[0, 1, 0] == 101


def test_a_fully_transparent_tile_is_a_clear_png_of_its_size(tmp_path):
    rgba = np.zeros((300, 260, 4), np.uint8)
    rgba[5:10, 5:10] = (0, 0, 255, 255)  # the first tile has something; the others are clear
    write_dzi(rgba, tmp_path, "outline", "png")
    top = tmp_path / "outline_files" / str(max_level(260, 300))
    for name, size in (("1_0.png", (4, 256)), ("0_1.png", (256, 44)), ("1_1.png", (4, 44))):
        with Image.open(top / name) as tile:
            assert tile.mode == "RGBA" and tile.size == size and not np.asarray(tile)[..., 3].any()
    with Image.open(top / "0_0.png") as tile:
        assert tuple(np.asarray(tile)[7, 7]) == (0, 0, 255, 255)
