"""Where PixelCAM's seeds may land: never an FG seed in an image of a class without ROI (CAMELYON16-like
normal patches); GlaS-like data (ROI in every class) keeps FG seeds in both classes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelcam.models import create_wsol_model
from pixelcam.runtime.pseudo_labels import PseudoLabeler, grid_cams, pixel_logits_on_grid, seed_purity

GRID = (7, 7)


def draw(**kw) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    labeler = PseudoLabeler(create_wsol_model("cam", "resnet10t"), "pb", n=5, seed=1, **kw)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    return labeler(torch.randn(6, 3, 64, 64), labels, GRID), labels


def test_glas_like_data_keeps_fg_seeds_in_both_classes():
    seeds, labels = draw()
    for i in range(len(labels)):
        assert (seeds[i] == 1).sum() == 5 and (seeds[i] == 0).sum() == 5


def test_no_fg_seed_ever_lands_in_an_image_without_roi():
    seeds, labels = draw(no_roi_labels={0})  # default: no pixel loss for them (the official code)
    assert (seeds[labels == 0] == -1).all()
    assert ((seeds[labels == 1] == 1).sum((1, 2)) == 5).all()
    seeds, labels = draw(no_roi_labels={0}, no_roi_seeds="bg")  # option: their BG seeds only
    assert not (seeds[labels == 0] == 1).any() and ((seeds[labels == 0] == 0).sum((1, 2)) == 5).all()
    assert ((seeds[labels == 1] == 1).sum((1, 2)) == 5).all()


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="no_roi_seeds must be one of"):
        PseudoLabeler(create_wsol_model("cam", "resnet10t"), no_roi_seeds="fg")


def test_seed_grid_image_draws_on_the_image_and_feature_on_the_grid():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 64)
    labels = torch.tensor([0, 1])
    image = PseudoLabeler(create_wsol_model("cam", "resnet10t"), n=5, seed=1)  # default: the image grid
    assert image.seed_grid == "image" and image.grid(images, GRID) == (64, 64)
    seeds = image(images, labels, image.grid(images, GRID))
    assert seeds.shape == (2, 64, 64) and ((seeds == 1).sum((1, 2)) == 5).all()
    feature = PseudoLabeler(create_wsol_model("cam", "resnet10t"), n=5, seed=1, seed_grid="feature")
    assert feature(images, labels, feature.grid(images, GRID)).shape == (2, *GRID)
    logits = torch.randn(2, 2, *GRID)
    up = pixel_logits_on_grid(logits, "image", (64, 64))
    ref = F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False)
    assert up.shape == (2, 2, 64, 64) and torch.equal(up, ref)
    assert pixel_logits_on_grid(logits, "feature", (64, 64)) is logits


def test_feature_grid_cams_are_renormalised_after_pooling():
    class Fixed(torch.nn.Module):  # a "baseline" whose CAM is a fixed ramp (min-max normalised)
        def cam(self, images, labels):
            ramp = torch.linspace(0, 1, 8)
            return ramp[None, :, None].expand(images.shape[0], 8, 8)

    maps = grid_cams(Fixed(), torch.zeros(1, 3, 8, 8), torch.tensor([0]), (2, 2))
    # area pooling gives row means 3/14 and 11/14; renormalised per image: 0 and 1 (the official PB's order)
    assert torch.allclose(maps[0], torch.tensor([[0.0, 0.0], [1.0, 1.0]]))


def test_seed_purity_by_hand():
    mask = np.zeros((4, 4), np.uint8)
    mask[:2, :2] = 255  # ROI: the top-left quarter
    seeds = torch.full((1, 4, 4), -1)
    seeds[0, 0, 0] = seeds[0, 1, 1] = seeds[0, 3, 3] = 1  # 2 of 3 FG seeds inside
    seeds[0, 0, 1] = seeds[0, 2, 2] = 0  # 1 of 2 BG seeds outside
    p = seed_purity(seeds, [mask])
    assert (p.fg_in, p.fg, p.bg_out, p.bg) == (2, 3, 1, 2)
    assert p.fg_purity == pytest.approx(200 / 3) and p.bg_purity == pytest.approx(50.0)
    # on a 2x2 feature grid a cell is ROI when at least half of it is: only cell (0, 0)
    cells = torch.tensor([[[1, 0], [-1, 0]]])
    q = seed_purity(cells, [mask])
    assert (q.fg_in, q.fg, q.bg_out, q.bg) == (1, 1, 2, 2)
