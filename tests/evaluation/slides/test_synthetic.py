from pathlib import Path

import numpy as np
import tiffslide
from scipy import ndimage

from pixelcam.cli import main
from pixelcam.evaluation.slides.tissue import saturation


def test_synth_slide_writes_a_pyramid_and_a_mask_inside_its_tissue(tmp_path: Path, synth_dir: Path, capsys):
    out = tmp_path / "s" / "colon.tif"
    assert (
        main(
            [
                "data",
                "synth-slide",
                "--data",
                str(synth_dir),
                "--domain",
                "synth-colon",
                "--out",
                str(out),
                "--size",
                "1024",
                "--patch",
                "64",
            ]
        )
        == 0
    )
    assert "colon_mask.tif" in capsys.readouterr().out
    s = tiffslide.TiffSlide(out)
    assert s.level_dimensions == ((1024, 1024), (512, 512)) and float(s.properties["tiffslide.mpp-x"]) == 0.5
    m = tiffslide.TiffSlide(tmp_path / "s" / "colon_mask.tif")
    assert m.dimensions == (256, 256) and float(m.properties["tiffslide.mpp-x"]) == 2.0
    rgb = np.asarray(s.read_region((0, 0), 0, (1024, 1024)).convert("RGB"))
    tissue = ndimage.binary_fill_holes(saturation(rgb[::4, ::4]) > 0.1)  # lumens are pale but inside
    roi = np.asarray(m.read_region((0, 0), 0, (256, 256), as_array=True))[..., 0] > 0
    assert 0.3 < tissue.mean() < 0.5  # the ellipse: pi * 0.42 * 0.30 = 0.40 of the slide
    assert roi.any() and (roi & ~tissue).sum() <= 0.01 * roi.sum()  # ROI lies on tissue
