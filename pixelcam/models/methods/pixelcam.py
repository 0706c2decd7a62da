"""PixelCAM: backbone + image head g (GAP + linear) + pixel head f, a 1x1 FG/BG classifier on F.

The localization map is softmax(f(F))[:, 1] upsampled to the image size (already a probability, so it is not
min-max normalised). `pixel_head_depth=1` is the paper's linear head (d*2 + 2 parameters: 4,098 for ResNet-50,
386 for DeiT-Tiny); `3` is the multi-layer ablation (three 1x1 convs halving the width, ReLU between).
"""

from __future__ import annotations

import torch
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.base import CLASSIFIER_KWARGS, CLASSIFIER_SETTING, SEED_PARAMS, WSOLModel
from pixelcam.models.methods.cam import CAM


def pixel_head(in_features: int, depth: int = 1) -> nn.Module:
    """The pixel classifier f: (B, d, h, w) -> (B, 2, h, w) FG/BG logits."""
    if depth == 1:
        return nn.Conv2d(in_features, 2, kernel_size=1)
    if depth < 1:
        raise ValueError(f"pixel_head_depth must be >= 1, got {depth}")
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth - 1):
        layers += [nn.Conv2d(width, width // 2, kernel_size=1), nn.ReLU(inplace=True)]
        width //= 2
    layers.append(nn.Conv2d(width, 2, kernel_size=1))
    return nn.Sequential(*layers)


class PixelCAM(CAM):
    """An image head g plus the pixel head f; the map comes from f, not from g's weights. g is the baseline's
    own (`classifier`: its DeepMIL attention pooling, SAT's token head; the factory builds it from
    `baseline_method`), or CAM's GAP + linear without one."""

    method = "pixelcam"
    kind = "pseudo_labels"
    normalize = False
    model_kwargs = ("pixel_head_depth", CLASSIFIER_SETTING, *CLASSIFIER_KWARGS)
    classifier_kwargs = CLASSIFIER_KWARGS  # the baseline's settings (the factory builds it, if named)
    classifier_setting = CLASSIFIER_SETTING
    train_params = (
        *SEED_PARAMS,
        "seed_grid",
        "pixel_head_depth",
        "pixelcam_head",
        "no_roi_seeds",
        "pseudo_labels_checkpoint",
        "init_from",
    )

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        pixel_head_depth: int = 1,
        classifier: WSOLModel | None = None,
    ) -> None:
        super().__init__(backbone, num_classes)
        self.classifier = None
        if classifier is not None:
            if not classifier.is_baseline() or classifier.backbone is not backbone:
                raise ValueError("pixelcam: the classifier must be a baseline built on PixelCAM's backbone")
            del self.head  # g is the baseline's head
            self.classifier = classifier
        self.pixel_head = pixel_head(backbone.num_features, pixel_head_depth)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features) if self.classifier is None else self.classifier.classify(features)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = super().forward(images) if self.classifier is None else self.classifier(images)
        out["pixel_logits"] = self.pixel_head(out["features"])
        return out

    def load_baseline(self, state: dict[str, torch.Tensor]) -> list[str] | None:
        """The baseline checkpoint's backbone and head into the classifier (every tensor must fit); None
        without one (the generic copy of backbone and a head of the same shape applies)."""
        if self.classifier is None:
            return None
        self.classifier.load_state_dict(state)
        return ["backbone", "head"]

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        # f is class-agnostic (FG vs BG): the target class does not change the map.
        return torch.softmax(self.pixel_head(features), dim=1)[:, 1]
