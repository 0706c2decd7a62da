import numpy as np
import pytest

from pixelcam.metrics import separability_index


def test_j_matches_scatter_matrices():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(5, 6, 7))
    mask = rng.random((6, 7)) < 0.4
    x = feats.reshape(5, -1).T
    mu = x.mean(0)
    sw = np.zeros((5, 5))
    sb = np.zeros((5, 5))
    for sel in (mask.ravel(), ~mask.ravel()):
        xc = x[sel]
        d = xc - xc.mean(0)
        sw += d.T @ d
        m = (xc.mean(0) - mu)[:, None]
        sb += len(xc) * (m @ m.T)
    assert separability_index(feats, mask) == pytest.approx(np.trace(sb) / np.trace(sw))


def test_j_hand_example_and_edge_cases():
    # 1-D features: FG {2, 4}, BG {0, 0}: mu = 1.5, S_W = 2, S_B = 2*(3-1.5)^2 + 2*(0-1.5)^2 = 9
    feats = np.array([[[2.0, 4.0], [0.0, 0.0]]])
    mask = np.array([[1, 1], [0, 0]])
    assert separability_index(feats, mask) == pytest.approx(4.5)
    assert np.isnan(separability_index(feats, np.zeros((2, 2))))
    # a mask at image resolution is resized to the feature grid
    assert separability_index(feats, np.kron(mask, np.ones((4, 4)))) == pytest.approx(4.5)
