"""PixelCAM's pseudo-labels: the frozen baseline's CAM of the true class, sampled into FG/BG seeds.

`seed_grid` says where seeds are drawn (both recorded with every run):
- `image` (default, the official code): on the image grid, from the CAM at the image size; the pixel logits
  are upsampled (bilinear) to the image size for the loss (`pixel_logits_on_grid`).
- `feature`: on the feature grid, from the CAM area-pooled to it and min-max normalised again (the official
  PB normalises before inverting); coarse: a 7x7 grid has 49 cells for 2n seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pixelcam.config import NO_ROI_SEEDS, SEED_GRIDS
from pixelcam.models.base import WSOLModel, minmax_normalize
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
    """(B, h, w) CAMs in [0, 1] of each image's true class on `grid`: as is at the image size, else
    area-resized to the grid and min-max normalised per image."""
    maps = baseline.cam(images, labels)  # (B, H, W), min-max normalised for baselines
    if tuple(maps.shape[-2:]) != tuple(grid):
        maps = minmax_normalize(F.adaptive_avg_pool2d(maps[:, None], grid)[:, 0])
    return maps.clamp(0.0, 1.0)


def pixel_logits_on_grid(
    pixel_logits: torch.Tensor, seed_grid: str, image_size: tuple[int, int]
) -> torch.Tensor:
    """f's logits (B, 2, h, w) where the seeds are: upsampled to the image (`image`), as is (`feature`)."""
    if seed_grid == "image" and tuple(pixel_logits.shape[-2:]) != tuple(image_size):
        return F.interpolate(pixel_logits, size=tuple(image_size), mode="bilinear", align_corners=False)
    return pixel_logits


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
        seed_grid: str = "image",
        bg_sampling: str = "inverse",
    ) -> None:
        if no_roi_seeds not in NO_ROI_SEEDS:
            raise ValueError(f"no_roi_seeds must be one of {NO_ROI_SEEDS}, got {no_roi_seeds!r}")
        if seed_grid not in SEED_GRIDS:
            raise ValueError(f"seed_grid must be one of {SEED_GRIDS}, got {seed_grid!r}")
        self.no_roi_labels = frozenset(no_roi_labels)
        self.no_roi_seeds = no_roi_seeds
        self.seed_grid = seed_grid
        self.baseline = freeze(baseline)
        kwargs = {"n": n, "seed": seed}
        if sampler == "pb":
            kwargs.update(bg_area=bg_area, bg_sampling=bg_sampling)
        self.sampler = create_sampler(sampler, **kwargs)

    def reseed(self, seed: int) -> None:
        """Restart the draws from `seed` (one seed per rank and epoch keeps resumed runs identical)."""
        self.sampler.reseed(seed)

    def grid(self, images: torch.Tensor, feature_grid: tuple[int, int]) -> tuple[int, int]:
        """The (h, w) seeds are drawn on for these images and this feature grid."""
        return tuple(images.shape[-2:]) if self.seed_grid == "image" else tuple(feature_grid)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(B, h, w) int64 labels on `grid`: 1 FG, 0 BG, -1 ignore."""
        seeds = self.sampler(grid_cams(self.baseline, images, labels, grid))
        if self.no_roi_labels:
            no_roi = torch.isin(labels, torch.tensor(sorted(self.no_roi_labels), device=labels.device))
            drop = (
                seeds.new_ones(seeds.shape, dtype=torch.bool) if self.no_roi_seeds == "none" else seeds == 1
            )
            seeds = torch.where(no_roi[:, None, None] & drop, torch.full_like(seeds, -1), seeds)
        return seeds


@dataclass
class SeedPurity:
    """Counts of seeds that agree with the ROI masks: FG seeds inside, BG seeds outside."""

    fg_in: int = 0
    fg: int = 0
    bg_out: int = 0
    bg: int = 0

    def add(self, other: SeedPurity) -> SeedPurity:
        return SeedPurity(
            self.fg_in + other.fg_in, self.fg + other.fg, self.bg_out + other.bg_out, self.bg + other.bg
        )

    @property
    def fg_purity(self) -> float:
        return 100.0 * self.fg_in / self.fg if self.fg else float("nan")

    @property
    def bg_purity(self) -> float:
        return 100.0 * self.bg_out / self.bg if self.bg else float("nan")


def seed_purity(seeds: torch.Tensor, masks: list[np.ndarray | torch.Tensor]) -> SeedPurity:
    """Purity of seeds (B, h, w) against binary masks (H, W): a mask is area-resized to the seed grid and a
    cell counts as ROI when at least half of it is ROI (on the image grid: the mask itself)."""
    out = SeedPurity()
    for s, m in zip(seeds, masks, strict=True):
        m = torch.as_tensor(np.asarray(m), dtype=torch.float32)
        if m.max() > 1:
            m = m / 255.0
        if tuple(m.shape) != tuple(s.shape):
            m = F.adaptive_avg_pool2d(
                F.interpolate(m[None, None], size=_multiple(m.shape, s.shape), mode="nearest"), tuple(s.shape)
            )[0, 0]
        roi = m >= 0.5
        fg, bg = s == 1, s == 0
        out = out.add(SeedPurity(int((fg & roi).sum()), int(fg.sum()), int((bg & ~roi).sum()), int(bg.sum())))
    return out


def _multiple(shape: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """The smallest size >= `shape` that `grid` divides (so area pooling is exact)."""
    return tuple(-(-a // g) * g for a, g in zip(shape, grid, strict=True))
