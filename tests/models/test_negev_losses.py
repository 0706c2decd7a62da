"""NEGEV's losses against independent computations: the CRF against the naive N x N double sum (float64,
autograd for its gradient), negative evidence and the log-barrier against their hand-derived formulas."""

import math

import pytest
import torch

from pixelcam.models.negev_losses import (
    barrier_t,
    crf_loss,
    dilate_seeds,
    extended_log_barrier,
    negative_evidence_loss,
    size_loss,
)


def naive_crf(probs: torch.Tensor, images: torch.Tensor, s_rgb: float, s_xy: float) -> torch.Tensor:
    """sum_k sum_ij W_ij S_ki (1 - S_kj) per image, W built in full, averaged over the batch (float64)."""
    total = 0.0
    for p, im in zip(probs.double(), images.double(), strict=True):
        k, h, w = p.shape
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        pos = torch.stack([xs.flatten(), ys.flatten()], 1).double()
        rgb = im.flatten(1).T
        d_pos = ((pos[:, None] - pos[None]) ** 2).sum(-1)
        d_rgb = ((rgb[:, None] - rgb[None]) ** 2).sum(-1)
        wmat = torch.exp(-d_pos / (2 * s_xy**2) - d_rgb / (2 * s_rgb**2))
        s = p.flatten(1)
        for c in range(k):
            total = total + (wmat * s[c][:, None] * (1 - s[c])[None, :]).sum()
    return total / probs.shape[0]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("sigmas", [(15.0, 100.0), (40.0, 5.0)])
def test_crf_matches_the_naive_double_sum_values_and_gradients(size: int, sigmas: tuple[float, float]):
    g = torch.Generator().manual_seed(size)
    # a piecewise image (two regions) plus noise, as tissue: the kernel is neither ~0 nor ~1 everywhere
    images = torch.full((2, 3, size, size), 60.0)
    images[:, :, : size // 2] = 190.0
    images = (images + 25 * torch.randn(2, 3, size, size, generator=g)).clamp(0, 255).round()
    logits = torch.randn(2, 2, size, size, generator=g)
    ours_in = logits.clone().requires_grad_(True)
    ref_in = logits.double().clone().requires_grad_(True)
    ours = crf_loss(torch.softmax(ours_in, 1), images, *sigmas, block=100)  # blocks that split rows unevenly
    ref = naive_crf(torch.softmax(ref_in, 1), images, *sigmas)
    ours.backward()
    ref.backward()
    assert abs(float(ours) - float(ref)) / abs(float(ref)) <= 1e-3
    assert _rel(ours_in.grad, ref_in.grad) <= 1e-3
    assert float(ours) > 0


def test_crf_is_lower_for_a_segmentation_that_follows_the_image():
    images = torch.zeros(1, 3, 16, 16)
    images[:, :, :8] = 200.0
    follows = torch.zeros(1, 2, 16, 16)
    follows[:, 1, :8], follows[:, 0, 8:] = 1.0, 1.0
    crosses = torch.zeros(1, 2, 16, 16)
    crosses[:, 1, :, :8], crosses[:, 0, :, 8:] = 1.0, 1.0
    assert float(crf_loss(follows, images)) < 1e-6 * float(crf_loss(crosses, images))


def test_crf_scale_downsizes_both_inputs_first():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(1, 3, 32, 32, generator=g) * 255
    probs = torch.softmax(torch.randn(1, 2, 32, 32, generator=g), 1)
    small = torch.nn.functional.interpolate
    ref = naive_crf(
        small(probs, size=[16, 16], mode="bilinear", align_corners=False),
        small(images, size=[16, 16], mode="bilinear", align_corners=False),
        15.0,
        50.0,  # positions in the original pixels: sigma_xy scaled with the image
    )
    assert float(crf_loss(probs, images, scale=0.5)) == pytest.approx(float(ref), rel=1e-3)
    with pytest.raises(ValueError, match=r"scale must be in \(0, 1\]"):
        crf_loss(probs, images, scale=0.0)


def test_negative_evidence_is_the_background_cross_entropy_of_no_roi_images_only():
    logits = torch.randn(3, 2, 4, 5, requires_grad=True)
    no_roi = torch.tensor([True, False, True])
    loss = negative_evidence_loss(logits, no_roi)
    # by hand: -log softmax_bg = softplus(z_fg - z_bg), averaged over the 2 images' 20 pixels each
    z = logits.detach()
    expected = torch.nn.functional.softplus(z[[0, 2], 1] - z[[0, 2], 0]).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    loss.backward()
    sig = torch.sigmoid(z[:, 1] - z[:, 0]) / 40  # d/dz_fg = sigmoid(z_fg - z_bg) / (pixels counted)
    assert torch.allclose(logits.grad[[0, 2], 1], sig[[0, 2]], atol=1e-7)
    assert torch.allclose(logits.grad[[0, 2], 0], -sig[[0, 2]], atol=1e-7)
    assert float(logits.grad[1].abs().sum()) == 0.0  # an image with ROI takes no part
    none = negative_evidence_loss(logits, torch.zeros(3, dtype=torch.bool))
    assert float(none) == 0.0 and none.requires_grad


@pytest.mark.parametrize("t", [1.0, 2.5, 10.0])
def test_extended_log_barrier_by_hand(t: float):
    z = torch.tensor([-50.0, -2.0, -1.0 / t**2, -0.01, 0.0, 3.0], dtype=torch.float64, requires_grad=True)
    psi = extended_log_barrier(z, t)
    for zi, vi in zip(z.detach().tolist(), psi.detach().tolist(), strict=True):
        if zi <= -1 / t**2:
            assert vi == pytest.approx(-math.log(-zi) / t)
        else:
            assert vi == pytest.approx(t * zi - math.log(1 / t**2) / t + 1 / t)
    psi.sum().backward()
    for zi, gi in zip(z.detach().tolist(), z.grad.tolist(), strict=True):
        assert gi == pytest.approx(-1 / (t * zi) if zi <= -1 / t**2 else t)
    # continuous, with a continuous derivative, where the branches meet
    edge, eps = -1 / t**2, 1e-9
    lo, hi = extended_log_barrier(torch.tensor([edge - eps, edge + eps], dtype=torch.float64), t)
    assert float(lo) == pytest.approx(float(hi), abs=1e-6)


def test_size_loss_rewards_balanced_areas_and_pushes_a_collapsing_side_up():
    probs = torch.full((1, 2, 10, 10), 0.5, requires_grad=True)
    balanced = size_loss(probs, 1.0)
    assert float(balanced) == pytest.approx(-2 * math.log(50.0))  # psi_1(-50) for both channels
    skewed = torch.zeros(1, 2, 10, 10)
    skewed[:, 0], skewed[:, 1] = 0.99, 0.01
    assert float(size_loss(skewed, 1.0)) > float(balanced)
    balanced.backward()
    assert torch.allclose(probs.grad, torch.full_like(probs, -1 / 50.0))  # d psi(-A)/dS = -1/(t A)


def test_barrier_t_schedule():
    assert barrier_t(0) == 1.0
    assert barrier_t(1) == pytest.approx(1.01)
    assert barrier_t(100) == pytest.approx(1.01**100)
    assert barrier_t(10_000) == 10.0


def test_dilate_seeds_grows_squares_and_drops_disputed_pixels():
    seeds = torch.full((1, 7, 7), -1)
    seeds[0, 1, 1], seeds[0, 3, 3] = 1, 0  # their 3 x 3 squares share the pixel (2, 2)
    out = dilate_seeds(seeds, 3)
    fg = torch.zeros(7, 7, dtype=torch.bool)
    fg[0:3, 0:3] = True
    bg = torch.zeros(7, 7, dtype=torch.bool)
    bg[2:5, 2:5] = True
    expected = torch.full((7, 7), -1)
    expected[fg & ~bg], expected[bg & ~fg] = 1, 0
    assert torch.equal(out[0], expected) and out[0, 2, 2] == -1
    assert dilate_seeds(seeds, 1) is seeds
    with pytest.raises(ValueError, match="odd"):
        dilate_seeds(seeds, 2)
