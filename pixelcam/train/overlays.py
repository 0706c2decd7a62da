"""CAM overlay strips (input with ROI outline | map as a heat overlay) for MLflow and reports (numpy)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pixelcam.data.preview import outline
from pixelcam.runtime.transforms import IMAGENET_MEAN, IMAGENET_STD


def denormalize(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) ImageNet-normalised -> (B, H, W, 3) uint8."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (images.detach().cpu().float() * std + mean).clamp(0, 1)
    return (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def heat(maps: np.ndarray) -> np.ndarray:
    """(..., H, W) in [0, 1] -> (..., H, W, 3) uint8 with matplotlib's 'jet' colormap."""
    import matplotlib

    return (matplotlib.colormaps["jet"](np.clip(maps, 0, 1))[..., :3] * 255).astype(np.uint8)


def overlay_grid(
    images: torch.Tensor, masks: list[np.ndarray | None], maps: torch.Tensor, alpha: float = 0.5
) -> np.ndarray:
    """One row per image: [input with ROI outline | CAM blended over the input], 4 px gaps, uint8 RGB."""
    rgb = denormalize(images)
    h, w = rgb.shape[1:3]
    maps = F.interpolate(maps[:, None].float().cpu(), size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    rows = []
    for i, img in enumerate(rgb):
        mask = masks[i]
        left = img
        if mask is not None:
            m = F.interpolate(torch.from_numpy(mask)[None, None].float(), size=(h, w), mode="nearest")[0, 0]
            left = outline(img, m.numpy() > 0.5)
        right = (alpha * heat(maps[i].numpy()) + (1 - alpha) * img).astype(np.uint8)
        gap = np.full((h, 4, 3), 255, np.uint8)
        rows.append(np.concatenate([left, gap, right], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)
