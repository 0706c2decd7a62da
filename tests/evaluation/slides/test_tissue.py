import numpy as np
from skimage.filters import threshold_otsu

from pixelcam.evaluation.slides.tissue import otsu_threshold, saturation, tissue_mask


def test_saturation_matches_the_hsv_definition():
    import colorsys

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    ref = np.array([[colorsys.rgb_to_hsv(*(px / 255.0))[1] for px in row] for row in rgb])
    np.testing.assert_allclose(saturation(rgb), ref, atol=1e-6)


def test_otsu_agrees_with_skimage_on_bimodal_data():
    rng = np.random.default_rng(1)
    values = np.clip(np.concatenate([rng.normal(0.08, 0.03, 5000), rng.normal(0.45, 0.08, 3000)]), 0, 1)
    # skimage thresholds the raw values; ours a 256-bin histogram of [0, 1]: within one bin
    assert abs(otsu_threshold(values) - threshold_otsu(values, nbins=256)) <= 1.5 / 256


def test_tissue_mask_finds_a_stained_ellipse_and_ignores_a_blank_slide():
    rng = np.random.default_rng(2)
    h, w = 300, 400
    img = (235 + rng.integers(0, 10, (h, w, 3))).astype(np.uint8)  # glass
    yy, xx = np.mgrid[0:h, 0:w]
    ellipse = ((xx - 200) / 150) ** 2 + ((yy - 150) / 90) ** 2 <= 1
    tissue = np.stack(
        [
            200 + rng.integers(0, 40, (h, w)),
            120 + rng.integers(0, 40, (h, w)),
            190 + rng.integers(0, 40, (h, w)),
        ],
        -1,
    )
    img[ellipse] = tissue[ellipse]
    img[150, 200] = (240, 240, 240)  # a glassy hole inside tissue (a lumen) is filled
    img[20:23, 20:23] = (150, 40, 150)  # a speck of dust on the glass is dropped
    mask = tissue_mask(img)
    iou = (mask & ellipse).sum() / (mask | ellipse).sum()
    assert iou > 0.97 and mask[150, 200] and not mask[21, 21]
    img[120:160, 240:280] = (240, 240, 240)  # glass the section wraps around: 1.3 % of the image, not tissue
    mask = tissue_mask(img)
    assert not mask[125:155, 245:275].any() and mask[150, 180]
    blank = (235 + rng.integers(0, 10, (h, w, 3))).astype(np.uint8)
    assert tissue_mask(blank).mean() < 0.01
