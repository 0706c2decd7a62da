"""DeepMIL (Ilse et al. 2018) with gated attention pooling over the spatial locations of F.

a_i = softmax_i(w^T (tanh(V h_i) * sigmoid(U h_i))), z = sum_i a_i h_i, logits = Linear(z). The CAM is the
attention map a (one map for all classes, as in the paper), so the target class does not change it.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.methods.attention_pool import AttentionPoolModel


class DeepMIL(AttentionPoolModel):
    method = "deepmil"

    def __init__(self, backbone: Backbone, num_classes: int, hidden: int = 128) -> None:
        super().__init__(backbone, num_classes)
        d = backbone.num_features
        self.v = nn.Linear(d, hidden)
        self.u = nn.Linear(d, hidden)
        self.w = nn.Linear(hidden, 1)

    def scores(self, instances: torch.Tensor) -> torch.Tensor:
        return self.w(torch.tanh(self.v(instances)) * torch.sigmoid(self.u(instances))).squeeze(-1)
