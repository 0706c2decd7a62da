"""DeepMIL (Ilse et al. 2018) with gated attention pooling over the spatial locations of F.

a_i = softmax_i(w^T (tanh(V h_i) * sigmoid(U h_i))), z = sum_i a_i h_i, logits = Linear(z). The CAM is the
attention map a (one map for all classes, as in the paper), so the target class does not change it.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.base import WSOLModel


class GatedAttention(nn.Module):
    """Gated attention scores (B, h*w) over instances (B, h*w, d)."""

    def __init__(self, in_features: int, hidden: int = 128) -> None:
        super().__init__()
        self.v = nn.Linear(in_features, hidden)
        self.u = nn.Linear(in_features, hidden)
        self.w = nn.Linear(hidden, 1)

    def forward(self, instances: torch.Tensor) -> torch.Tensor:
        return self.w(torch.tanh(self.v(instances)) * torch.sigmoid(self.u(instances))).squeeze(-1)


class DeepMIL(WSOLModel):
    method = "deepmil"

    def __init__(self, backbone: Backbone, num_classes: int, hidden: int = 128) -> None:
        super().__init__(backbone, num_classes)
        self.attention = GatedAttention(backbone.num_features, hidden)
        self.fc = nn.Linear(backbone.num_features, num_classes)

    def _attend(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        instances = features.flatten(2).transpose(1, 2)  # (B, h*w, d)
        a = torch.softmax(self.attention(instances), dim=1)
        return a, torch.einsum("bn,bnd->bd", a, instances)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self._attend(features)[1])

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
            a, _ = self._attend(features)
        return a.view(features.shape[0], *features.shape[2:])
