"""Training losses: plain CE for baselines; CE(y, g(F)) + lambda * partial CE(y', f(F)) for PixelCAM."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -1


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CE of the image classifier g (baselines and PixelCAM's first term)."""
    return F.cross_entropy(logits, labels)


def partial_cross_entropy(pixel_logits: torch.Tensor, pseudo_labels: torch.Tensor) -> torch.Tensor:
    """Mean CE of f (B, 2, h, w) over the sampled locations of `pseudo_labels` (B, h, w; -1 = ignore).

    Zero (with a graph) when nothing was sampled, instead of the NaN that an all-ignored CE gives.
    """
    if pseudo_labels.shape != pixel_logits.shape[:1] + pixel_logits.shape[2:]:
        raise ValueError(
            f"pseudo-labels {tuple(pseudo_labels.shape)} do not match pixel logits "
            f"{tuple(pixel_logits.shape)} (expected (B, h, w) on the feature grid)"
        )
    if not (pseudo_labels != IGNORE_INDEX).any():
        return pixel_logits.sum() * 0.0
    return F.cross_entropy(pixel_logits, pseudo_labels, ignore_index=IGNORE_INDEX)


def pixelcam_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    pixel_logits: torch.Tensor,
    pseudo_labels: torch.Tensor,
    lam: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """(total, {"ce": .., "pixel_ce": ..}) with total = CE(y, g(F)) + lam * partial_CE(y', f(F))."""
    ce = classification_loss(logits, labels)
    pce = partial_cross_entropy(pixel_logits, pseudo_labels)
    return ce + lam * pce, {"ce": float(ce.detach()), "pixel_ce": float(pce.detach())}


def segmentation_loss(
    logits: torch.Tensor, labels: torch.Tensor, pixel_logits: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Fully supervised (U-Net): CE(y, image logits) + mean pixel CE over the labelled pixels of `masks`
    (B, H, W; -1 where an image has no pixel labels), with the pixel logits at the masks' size."""
    if pixel_logits.shape[-2:] != masks.shape[-2:]:
        pixel_logits = F.interpolate(
            pixel_logits, size=tuple(masks.shape[-2:]), mode="bilinear", align_corners=False
        )
    ce = classification_loss(logits, labels)
    pce = partial_cross_entropy(pixel_logits, masks)
    return ce + pce, {"ce": float(ce.detach()), "pixel_ce": float(pce.detach())}
