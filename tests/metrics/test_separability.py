import numpy as np
import pytest
import torch
from skimage.transform import resize

from pixelcam.metrics import separability_index


def scatter_j(feats: np.ndarray, mask: np.ndarray) -> float:
    """Reference: traces of the dense scatter matrices S_B and S_W (numpy)."""
    d = feats.shape[0]
    x = feats.reshape(d, -1).T
    mu = x.mean(0)
    sw = np.zeros((d, d))
    sb = np.zeros((d, d))
    for sel in (mask.ravel(), ~mask.ravel()):
        xc = x[sel]
        dc = xc - xc.mean(0)
        sw += dc.T @ dc
        m = (xc.mean(0) - mu)[:, None]
        sb += len(xc) * (m @ m.T)
    return float(np.trace(sb) / np.trace(sw))


def test_j_matches_scatter_matrices():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(5, 6, 7))
    mask = rng.random((6, 7)) < 0.4
    assert separability_index(feats, mask) == pytest.approx(scatter_j(feats, mask))


def test_j_hand_example_and_edge_cases():
    # 1-D features: FG {2, 4}, BG {0, 0}: mu = 1.5, S_W = 2, S_B = 2*(3-1.5)^2 + 2*(0-1.5)^2 = 9
    feats = np.array([[[2.0, 4.0], [0.0, 0.0]]])
    mask = np.array([[1, 1], [0, 0]])
    assert separability_index(feats, mask) == pytest.approx(4.5)
    assert np.isnan(separability_index(feats, np.zeros((2, 2))))
    # on the feature grid, a mask at image resolution is resized (nearest) to the grid
    assert separability_index(feats, np.kron(mask, np.ones((4, 4))), resolution="feature") == pytest.approx(
        4.5
    )


def test_j_at_image_resolution_upsamples_the_features_bilinearly():
    """The paper's J: F interpolated to the image size. Reference: skimage's bilinear resize (half-pixel
    centres, edge clamping, as torch's align_corners=False) and the dense scatter matrices."""
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(70, 4, 4))
    mask = np.zeros((16, 16), np.uint8)
    mask[3:11, 5:14] = 255
    up = np.stack([resize(c, (16, 16), order=1, mode="edge", anti_aliasing=False) for c in feats])
    ref = scatter_j(up, mask > 0)
    assert separability_index(feats, mask) == pytest.approx(ref, rel=1e-9)
    assert separability_index(torch.from_numpy(feats), mask) == pytest.approx(ref, rel=1e-9)
    assert separability_index(feats, mask, resolution="feature") != pytest.approx(ref)
    with pytest.raises(ValueError, match="resolution must be one of"):
        separability_index(feats, mask, resolution="native")
