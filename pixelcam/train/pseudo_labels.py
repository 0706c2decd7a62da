"""PixelCAM's pseudo-labels: the frozen baseline's CAM of the true class, on the feature grid, sampled."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pixelcam.config import NO_ROI_SEEDS
from pixelcam.models.base import WSOLModel
from pixelcam.models.samplers import create_sampler


def freeze(model: WSOLModel) -> WSOLModel:
    """Eval mode (batch-norm statistics fixed) and no parameter gradients: the pseudo-label source."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def grid_cams(
    baseline: WSOLModel, images: torch.Tensor, labels: torch.Tensor, grid: tuple[int, int]
) -> torch.Tensor:
    """(B, h, w) CAMs in [0, 1] of each image's true class, area-resized to the feature grid (h, w)."""
    maps = baseline.cam(images, labels)  # (B, H, W), min-max normalised for baselines
    if tuple(maps.shape[-2:]) != tuple(grid):
        maps = F.adaptive_avg_pool2d(maps[:, None], grid)[:, 0]
    return maps.clamp(0.0, 1.0)


class PseudoLabeler:
    """Draws n FG and n BG locations per image from the baseline CAM at every call (`pb` or `th`).

    Images of a class without ROI (`no_roi_labels`: CAMELYON16's normal patches) get no FG seed, since every
    FG label there would be wrong: `no_roi_seeds="none"` (default, as the official code) leaves them out of
    the pixel loss; `"bg"` keeps their BG seeds. GlaS-like data (ROI in every class) has no such class.
    """

    def __init__(
        self,
        baseline: WSOLModel,
        sampler: str = "pb",
        n: int = 5,
        seed: int = 0,
        bg_area: float | None = None,
        no_roi_labels: set[int] | frozenset[int] = frozenset(),
        no_roi_seeds: str = "none",
    ) -> None:
        if no_roi_seeds not in NO_ROI_SEEDS:
            raise ValueError(f"no_roi_seeds must be one of {NO_ROI_SEEDS}, got {no_roi_seeds!r}")
        self.no_roi_labels = frozenset(no_roi_labels)
        self.no_roi_seeds = no_roi_seeds
        self.baseline = freeze(baseline)
        kwargs = {"n": n, "seed": seed}
        if sampler == "pb":
            kwargs["bg_area"] = bg_area
        self.sampler = create_sampler(sampler, **kwargs)

    def reseed(self, seed: int) -> None:
        """Restart the draws from `seed` (one seed per rank and epoch keeps resumed runs identical)."""
        self.sampler.seed = seed
        self.sampler._gen = None

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(B, h, w) int64 labels: 1 FG, 0 BG, -1 ignore."""
        seeds = self.sampler(grid_cams(self.baseline, images, labels, grid))
        if self.no_roi_labels:
            no_roi = torch.isin(labels, torch.tensor(sorted(self.no_roi_labels), device=labels.device))
            drop = (
                seeds.new_ones(seeds.shape, dtype=torch.bool) if self.no_roi_seeds == "none" else seeds == 1
            )
            seeds = torch.where(no_roi[:, None, None] & drop, torch.full_like(seeds, -1), seeds)
        return seeds
