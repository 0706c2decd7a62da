import numpy as np
import pytest
import tifffile

from pixelcam.errors import SlideError
from pixelcam.evaluation.slides.reader import choose_level, open_slide, read_region, slide_name


def _pyramid(path, size=1024, levels=3, mpp=0.25):
    img = np.full((size, size, 3), 230, np.uint8)
    img[100:300, 200:400] = (180, 60, 160)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            img,
            subifds=levels - 1,
            tile=(256, 256),
            compression="zlib",
            photometric="rgb",
            resolution=(1e4 / mpp, 1e4 / mpp),
            resolutionunit="CENTIMETER",
        )
        for k in range(1, levels):
            tif.write(
                img[:: 2**k, :: 2**k], subfiletype=1, tile=(256, 256), compression="zlib", photometric="rgb"
            )
    return img


def test_open_reads_levels_mpp_and_padded_regions(tmp_path):
    img = _pyramid(tmp_path / "a.tif")
    slide, info = open_slide(tmp_path / "a.tif")
    assert info.dimensions == ((1024, 1024), (512, 512), (256, 256)) and info.mpp == 0.25
    assert info.downsamples == (1.0, 2.0, 4.0) and info.level_mpp(2) == 1.0 and info.name == "a"
    tile = read_region(slide, info, 200, 100, 0, 64)
    np.testing.assert_array_equal(tile, img[100:164, 200:264])
    edge = read_region(slide, info, 1000, 1000, 0, 64)  # past the edge: zero-padded to the tile size
    assert edge.shape == (64, 64, 3) and edge[40:, 40:].max() == 0


def test_level_choice_by_mpp_or_level():
    from pixelcam.evaluation.slides.reader import SlideInfo

    info = SlideInfo("s.tif", ((4000, 4000), (2000, 2000), (1000, 1000)), (1.0, 2.0, 4.0), 0.25, "tiffslide")
    assert choose_level(info) == 0 and choose_level(info, mpp=0.5) == 1 and choose_level(info, mpp=0.9) == 2
    assert choose_level(info, level=2) == 2
    with pytest.raises(SlideError, match="--level 3 does not exist"):
        choose_level(info, level=3)
    with pytest.raises(SlideError, match="records no resolution"):
        choose_level(SlideInfo("s.tif", info.dimensions, info.downsamples, None, "tiffslide"), mpp=0.5)


def test_bad_slides_are_named(tmp_path):
    with pytest.raises(SlideError, match="nope.tif: no such slide file"):
        open_slide(tmp_path / "nope.tif")
    (tmp_path / "junk.tif").write_bytes(b"this is not a tiff at all" * 100)
    with pytest.raises(SlideError, match="junk.tif: not a readable slide"):
        open_slide(tmp_path / "junk.tif")
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((8, 10_001, 3), np.uint8))  # one level, too long to read
    with pytest.raises(SlideError, match="flat.tif: not pyramidal.*larger than 10000 px a side"):
        open_slide(tmp_path / "flat.tif")
    tifffile.imwrite(tmp_path / "region.tif", np.zeros((64, 96, 3), np.uint8))  # a small region: one level
    _, info = open_slide(tmp_path / "region.tif")
    assert info.dimensions == ((96, 64),)


def test_slide_names_drop_the_extension():
    assert slide_name("/a/tumor_001.tif") == "tumor_001" and slide_name("x/s.ome.tiff") == "s"


def test_a_header_claiming_a_million_pixels_a_side_is_refused_before_reading(tmp_path):
    """A forged or corrupt header (10^6 x 10^6 px) is named at open, before a thumbnail or heatmap exists."""
    _pyramid(tmp_path / "big.tif", size=512, levels=2)
    with tifffile.TiffFile(tmp_path / "big.tif", mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(1_000_000)
        tif.pages[0].tags["ImageLength"].overwrite(1_000_000)
    with pytest.raises(SlideError, match=r"big.tif: level 0 is 1000000x1000000 px; at most 500000 px a side"):
        open_slide(tmp_path / "big.tif")


def test_the_thumbnail_decodes_a_whole_level_as_tiffslide_reads_it(tmp_path):
    from PIL import Image

    from pixelcam.evaluation.slides.reader import thumbnail, whole_level

    img = _pyramid(tmp_path / "a.tif", size=1024, levels=3)
    slide, info = open_slide(tmp_path / "a.tif")
    for level, (w, h) in enumerate(info.dimensions):  # tifffile's decode, pixel for pixel tiffslide's
        whole = whole_level(slide, level, (w, h))
        assert whole is not None and np.array_equal(
            whole, np.asarray(slide.read_region((0, 0), level, (w, h)))
        )
    assert np.array_equal(whole_level(slide, 0, (1024, 1024)), img)
    assert whole_level(slide, 3, (128, 128)) is None and whole_level(slide, 0, (512, 512)) is None
    assert whole_level(object(), 0, (1024, 1024)) is None  # another backend: read_region reads it
    thumb, per_px = thumbnail(slide, info, max_size=300)  # level 1 (512 px) resized to 300
    expected = np.asarray(Image.fromarray(img[::2, ::2]).resize((300, 300), Image.BILINEAR))
    assert per_px == pytest.approx(1024 / 300) and np.array_equal(thumb, expected)
