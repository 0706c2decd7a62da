"""Shared base of attention-pooling methods (DeepMIL, SAT): the map is the pooling attention itself."""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.base import WSOLModel


class AttentionPoolModel(WSOLModel):
    """a = softmax_i(scores(F_i)) over spatial locations, z = sum_i a_i F_i, logits = Linear(z); CAM = a.

    Subclasses define `scores(instances (B, N, d)) -> (B, N)`. The map does not depend on the target class.
    """

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__(backbone, num_classes)
        self.fc = nn.Linear(backbone.num_features, num_classes)

    @abstractmethod
    def scores(self, instances: torch.Tensor) -> torch.Tensor:
        """Attention logits (B, N) of instances (B, N, d)."""

    def attend(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(attention (B, N), pooled features (B, d)) of F (B, d, h, w)."""
        instances = features.flatten(2).transpose(1, 2)  # (B, N = h*w, d)
        a = torch.softmax(self.scores(instances), dim=1)
        return a, torch.einsum("bn,bnd->bd", a, instances)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.attend(features)[1])

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        a, _ = self.attend(features)
        return a.view(features.shape[0], *features.shape[2:])
