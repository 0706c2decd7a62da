"""LayerCAM (Jiang et al. 2021): M = ReLU(sum_k ReLU(g_k) * A_k), element-wise gradient weights."""

from __future__ import annotations

import torch

from pixelcam.models.base import feature_gradients
from pixelcam.models.methods.cam import CAM


class LayerCAM(CAM):
    method = "layercam"

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        a, g = feature_gradients(self, features, targets, differentiable)
        return torch.relu((torch.relu(g) * a).sum(dim=1))  # eq. (4)-(5) of Jiang 2021
