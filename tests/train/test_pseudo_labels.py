"""Where PixelCAM's seeds may land: never an FG seed in an image of a class without ROI (CAMELYON16-like
normal patches); GlaS-like data (ROI in every class) keeps FG seeds in both classes."""

import pytest
import torch

from pixelcam.models import create_wsol_model
from pixelcam.train.pseudo_labels import PseudoLabeler

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
