import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from pixelcam.metrics import PxAP, pxap

B = 1000


def quantised(rng: np.random.Generator, shape: tuple[int, ...], bins: int = B) -> np.ndarray:
    """Maps whose values sit on bin starts k / B, so sklearn sees exactly the binned scores."""
    return rng.integers(0, bins, shape) / bins


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_quantised_data(seed: int):
    rng = np.random.default_rng(seed)
    maps = quantised(rng, (6, 17, 19))
    masks = (rng.random((6, 17, 19)) < np.clip(maps + rng.normal(0, 0.3, maps.shape), 0, 1)).astype(np.uint8)
    ref = 100 * average_precision_score(masks.ravel(), maps.ravel())
    assert pxap(maps, masks) == pytest.approx(ref, abs=1e-6)


def test_coarse_bins_and_float32_maps_match_sklearn_on_binned_scores():
    rng = np.random.default_rng(9)
    maps = rng.random((4, 32, 32)).astype(np.float32)
    masks = rng.random((4, 32, 32)) < maps
    # the documented binning: floor(s * B) with a 1e-4 bin-width tolerance for float32 rounding at edges
    bins = np.clip(np.floor(maps.astype(np.float64) * 10 + 1e-4), 0, 9)
    ref = 100 * average_precision_score(masks.ravel(), bins.ravel())
    assert pxap(torch.from_numpy(maps), torch.from_numpy(masks), num_bins=10) == pytest.approx(ref, abs=1e-6)


def test_saturated_maps_are_not_tied_with_the_top_bin():
    """FG at exactly 1.0 (a saturated float32 softmax), BG at 0.9995: sklearn and wsolevaluation (its own bin
    [1, 2) for values >= 1) give 100; one shared top bin [0.999, 1] would give the FG share, 30 here."""
    maps = np.full((1, 10, 10), 0.9995)
    masks = np.zeros((1, 10, 10), np.uint8)
    maps[0, :, :3], masks[0, :, :3] = 1.0, 1  # 30 FG pixels at 1.0
    maps[0, :, 3:4] = 1.0  # ... and 10 BG pixels at 1.0 too: precision 30/40 at the top threshold
    ref = 100 * average_precision_score(masks.ravel(), maps.ravel())
    assert ref == pytest.approx(75.0) and pxap(maps, masks) == pytest.approx(ref, abs=1e-9)
    maps[0, :, 3:4] = 0.9995
    assert pxap(maps, masks) == pytest.approx(100.0)


@pytest.mark.parametrize("seed", range(3))
def test_matches_sklearn_with_values_at_one(seed: int):
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, B + 1, (4, 9, 9)) / B  # k / B for k = 0..B: 1.0 included
    maps[:, 0, 0] = 1.0
    masks = (rng.random(maps.shape) < maps).astype(np.uint8)
    assert pxap(maps, masks) == pytest.approx(
        100 * average_precision_score(masks.ravel(), maps.ravel()), abs=1e-6
    )


def test_edge_cases():
    rng = np.random.default_rng(0)
    maps = quantised(rng, (3, 8, 8))
    masks = np.zeros((3, 8, 8), np.uint8)
    masks[1, 2, 3] = 1  # a single foreground pixel; images 0 and 2 are all background
    assert pxap(maps, masks) == pytest.approx(
        100 * average_precision_score(masks.ravel(), maps.ravel()), abs=1e-6
    )
    const = np.full((2, 8, 8), 0.3)
    m2 = np.zeros((2, 8, 8), np.uint8)
    m2[0, :2] = 1  # 16 of 128 pixels
    assert pxap(const, m2) == pytest.approx(100 * 16 / 128)  # precision of the only threshold
    perfect = m2.astype(float)
    assert pxap(perfect, m2) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="no foreground pixel"):
        pxap(maps, np.zeros_like(masks))


def test_prior_is_a_constant_maps_pxap_whatever_the_maps():
    """`PxAP.prior()`: the ROI's share of the scored pixels, the AP sklearn gives a constant score."""
    rng = np.random.default_rng(3)
    masks = (rng.random((4, 16, 16)) < 0.3).astype(np.uint8)
    state = PxAP().update(quantised(rng, (4, 16, 16)), masks)  # the model's maps do not change the prior
    flat = np.zeros(masks.size)
    assert state.prior() == pytest.approx(100 * masks.mean(), abs=1e-12)
    assert state.prior() == pytest.approx(100 * average_precision_score(masks.ravel(), flat), abs=1e-9)
    assert PxAP().update(np.full((4, 16, 16), 0.7), masks).compute() == pytest.approx(state.prior())
    with pytest.raises(ValueError, match="no foreground pixel"):
        PxAP().update(np.zeros((1, 4, 4)), np.zeros((1, 4, 4))).prior()


def test_validation_and_resizing():
    with pytest.raises(ValueError, match="NaN"):
        pxap(np.full((1, 4, 4), np.nan), np.ones((1, 4, 4)))
    with pytest.raises(ValueError, match=r"values in \[-0.5, 1\]"):
        pxap(np.array([[[-0.5, 1.0]]]), np.ones((1, 1, 2)))
    with pytest.raises(ValueError, match="2 scoremaps but 1 masks"):
        pxap(np.zeros((2, 4, 4)), np.ones((1, 4, 4)))
    # A 2x2 map upsampled to its 4x4 mask: bilinear interpolation of a constant-per-half map.
    small = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    mask = torch.zeros(4, 4)
    mask[:, 2:] = 1
    assert pxap([small], [mask]) == pytest.approx(100.0)
    # variable-size images as lists
    assert pxap(
        [np.ones((3, 5)) * 0.5, np.ones((2, 2))], [np.ones((3, 5)), np.zeros((2, 2))]
    ) == pytest.approx(100 * 15 / 19, abs=1e-9)


def test_merged_states_equal_one_pass():
    rng = np.random.default_rng(1)
    maps = quantised(rng, (10, 16, 16))
    masks = rng.random((10, 16, 16)) < 0.3
    one = PxAP().update(maps, masks)
    parts = [PxAP().update(maps[i : i + 3], masks[i : i + 3]) for i in range(0, 10, 3)]
    merged = parts[0] + parts[1]
    merged.merge(parts[2]).merge(parts[3])
    assert torch.equal(merged.fg, one.fg) and torch.equal(merged.bg, one.bg)
    assert merged.compute() == one.compute()
    restored = PxAP().load_state_dict(one.state_dict())
    assert restored.compute() == one.compute()
    assert int(one.fg.sum() + one.bg.sum()) == 10 * 16 * 16


def test_eval_size_224_resizes_maps_bilinearly_and_masks_nearest():
    """wsolevaluation's protocol: both at 224 x 224 before scoring. Reference: skimage resizes (order 1 for
    the map, order 0 for the mask) and sklearn's AP on the quantised result."""
    from skimage.transform import resize

    from pixelcam.metrics.pxap import at_eval_size

    rng = np.random.default_rng(4)
    m = rng.random((96, 80)).astype(np.float32)
    g = np.zeros((96, 80), np.uint8)
    g[20:70, 10:50] = 1
    sm, sg = at_eval_size(torch.from_numpy(m), torch.from_numpy(g), 224)
    assert sm.shape == sg.shape == (224, 224) and set(np.unique(sg.numpy())) <= {0, 1}
    ref_m = resize(m, (224, 224), order=1, mode="edge", anti_aliasing=False)
    ref_g = resize(g, (224, 224), order=0, preserve_range=True, anti_aliasing=False).astype(np.uint8)
    np.testing.assert_allclose(sm.numpy(), ref_m, atol=1e-5)
    assert (sg.numpy() != ref_g).mean() < 0.01  # nearest: at most a boundary row/column differs
    q = np.floor(ref_m * B) / B
    assert pxap([sm], [sg]) == pytest.approx(
        100 * average_precision_score(sg.numpy().ravel(), q.ravel()), abs=0.5
    )
    same_m, same_g = at_eval_size(torch.from_numpy(m), torch.from_numpy(g), "native")
    assert same_m.shape == (96, 80) and same_g.shape == (96, 80)
