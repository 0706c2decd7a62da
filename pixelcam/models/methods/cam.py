"""CAM (Zhou et al. 2016): M_c = sum_k w_ck F_k with the linear classifier after global average pooling."""

from __future__ import annotations

import torch

from pixelcam.models.backbones import Backbone
from pixelcam.models.base import GAPLinearHead, WSOLModel


class CAM(WSOLModel):
    method = "cam"

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__(backbone, num_classes)
        self.head = GAPLinearHead(backbone.num_features, num_classes)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        w = self.head.fc.weight[targets]  # (B, d)
        return torch.einsum("bd,bdhw->bhw", w, features)  # eq. (1) of Zhou 2016, bias omitted
