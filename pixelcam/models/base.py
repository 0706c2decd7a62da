"""The WSOL model interface shared by baselines and PixelCAM.

A model owns a backbone (F = backbone(x), (B, d, h, w)) and an image classifier; `forward` returns a dict with
`logits` (B, C) and `features` F, and `cam(images, target_classes)` returns per-image maps (B, H, W) in [0, 1]
at the image size, batched and on the input's device. `differentiable=False` (default) detaches the maps and
keeps no graph; `differentiable=True` keeps the graph through the backbone. No method changes train/eval mode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.precision import float32


def minmax_normalize(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-image min-max normalisation of (B, H, W) maps to [0, 1]; constant maps become all zeros."""
    flat = maps.flatten(1)
    lo = flat.min(1, keepdim=True).values
    hi = flat.max(1, keepdim=True).values
    span = hi - lo
    out = torch.where(span > eps, (flat - lo) / span.clamp(min=eps), torch.zeros_like(flat))
    return out.view_as(maps)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, h, w) maps to (B, *size)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


# What a method carrying a baseline's classifier declares (NEGEV, PixelCAM): the setting naming the baseline
# and that baseline's own settings; and the seed-sampling settings of the pseudo-label methods.
CLASSIFIER_SETTING = "baseline_method"
CLASSIFIER_KWARGS = ("mil_attention", "gradcampp_variant")
SEED_PARAMS = ("lam", "n", "sampler", "bg_sampling", "bg_area")


class WSOLModel(nn.Module, ABC):
    """Base class: subclasses define `classify(F) -> logits` and `raw_cam(F, targets, differentiable)`.

    `raw_cam` returns unnormalised maps on the feature grid (B, h, w); `cam` upsamples them to the image size
    and, when `normalize` is set (baselines, as in wsolevaluation), min-max normalises each image.
    """

    # Method metadata, read by configs, studies, checkpoints and reports instead of hand-kept lists.
    method: str = ""
    # "baseline" (a WSOL method of its own), "pseudo_labels" (trained on a baseline's: PixelCAM) or
    # "supervised" (trained on the train split's masks: the U-Net upper bound)
    kind: str = "baseline"
    normalize: bool = True  # baselines' maps are min-max normalised per image; PixelCAM's is a probability
    default_backbone: str = "resnet50"
    model_kwargs: tuple[str, ...] = ()  # TrainConfig fields passed to the constructor (kept in checkpoints)
    train_params: tuple[str, ...] = ()  # TrainConfig fields only this method reads (searched only for it)
    # a method that carries a baseline's classifier (NEGEV; PixelCAM with the baseline's head): the setting
    # naming that baseline, the baseline when none is named (None: carry none), and the settings that are
    # the baseline's (the factory builds it with them)
    classifier_setting: str | None = None
    default_classifier: str | None = None
    classifier_kwargs: tuple[str, ...] = ()

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes

    @abstractmethod
    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Image logits (B, C) from features F (B, d, h, w)."""

    @abstractmethod
    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        """Unnormalised maps (B, h, w) for per-image `targets` (B,); grad mode is `differentiable`."""

    def load_baseline(self, state: dict[str, torch.Tensor]) -> list[str] | None:
        """A baseline checkpoint's weights loaded by a model that carries the whole baseline (NEGEV, PixelCAM
        with its baseline's head); returns the parts loaded, or None: the generic copy applies."""
        return None

    @classmethod
    def normalization(cls) -> str:
        """How `cam` scales maps: "minmax" (per image) or "none" (recorded with checkpoints and reports)."""
        return "minmax" if cls.normalize else "none"

    @classmethod
    def is_baseline(cls) -> bool:
        return cls.kind == "baseline"

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images)
        return {"logits": self.classify(features), "features": features}

    def cam(
        self, images: torch.Tensor, target_classes: torch.Tensor | None = None, differentiable: bool = False
    ) -> torch.Tensor:
        """(B, H, W) maps in [0, 1] for `target_classes` (B,) (default: the predicted classes)."""
        return self.predict(images, target_classes, differentiable)[1]

    def predict(
        self, images: torch.Tensor, target_classes: torch.Tensor | None = None, differentiable: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, C), maps (B, H, W)) from one backbone pass: `cam`'s maps plus the image logits they
        were computed with (slide inference needs both; default targets: the predicted classes)."""
        with torch.set_grad_enabled(differentiable):  # gradient methods re-enable it for dS/dF only
            features = self.backbone(images)
            logits = self.classify(features)
            if target_classes is None:
                target_classes = logits.argmax(1).detach()
            targets = torch.as_tensor(target_classes, device=images.device).long().view(-1)
            if targets.numel() != images.shape[0]:
                raise ValueError(f"{targets.numel()} target classes for {images.shape[0]} images")
            with float32(images.device):  # the backbone ran under the caller's autocast; maps are fp32
                maps = self.raw_cam(features.float(), targets, differentiable)
        maps = upsample(maps.float(), tuple(images.shape[-2:]))
        if self.normalize:
            maps = minmax_normalize(maps)
        else:
            maps = maps.clamp(0.0, 1.0)
        return (logits, maps) if differentiable else (logits.detach(), maps.detach())


class GAPLinearHead(nn.Module):
    """Global average pooling then a linear classifier: the image head g of CAM-style models."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features.mean(dim=(2, 3)))


def feature_gradients(
    model: WSOLModel, features: torch.Tensor, targets: torch.Tensor, differentiable: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, dS_c/dA): the features and the gradient of each image's target-class score w.r.t. its features.

    The head after F acts per image, so summing the B target scores gives every image its own gradient in one
    backward pass. Gradients are taken w.r.t. F only (autograd.grad, no hooks, no parameter .grad touched).
    """
    a = features if differentiable else features.detach().requires_grad_(True)
    with torch.enable_grad():
        scores = model.classify(a).gather(1, targets[:, None]).sum()
        (grads,) = torch.autograd.grad(scores, a, create_graph=differentiable)
    return (a if differentiable else a.detach()), grads
