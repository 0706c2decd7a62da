"""The slide overview: the ROI's outline over the heatmap and a colour bar that reads from 1 (top) to 0."""

import io

import numpy as np
from PIL import Image

from pixelcam.evaluation.slides.overview import ROI_OUTLINE, colorize, overview_png


def test_overview_outlines_the_roi_and_carries_a_jet_colour_bar():
    thumb = np.full((100, 160, 3), 128, np.uint8)
    tissue = np.ones((100, 160), bool)
    heat = np.zeros((50, 80), np.uint8)
    roi = np.zeros((100, 160), bool)
    roi[20:60, 40:100] = True
    img = np.asarray(Image.open(io.BytesIO(overview_png(thumb, tissue, heat, roi=roi))).convert("RGB"))
    assert img.shape == (100, 2 * 160 + 16 + 44, 3)
    right = img[:, 168:328]
    assert (right[20, 40:100] == ROI_OUTLINE).all() and (right[59, 40:100] == ROI_OUTLINE).all()  # its edges
    assert (right[40, 70] != ROI_OUTLINE).any()  # inside: the map, not the outline
    bar = img[:, 336:350]
    top, bottom = colorize(np.array([[1.0]]))[0, 0], colorize(np.array([[0.0]]))[0, 0]
    assert (
        np.abs(bar[0, 5].astype(int) - top).max() <= 2 and np.abs(bar[-1, 5].astype(int) - bottom).max() <= 2
    )
    without = np.asarray(Image.open(io.BytesIO(overview_png(thumb, tissue, heat))).convert("RGB"))
    assert not (without[:, 168:328] == ROI_OUTLINE).all(-1).any()
