"""SAT (Wu et al. 2023), approximated: a learnable spatial-aware query token attending over the patch tokens.

Approximation (documented): SAT inserts a spatial-aware token into the last transformer blocks of a DeiT-Tiny
and trains it with extra area losses. Here the token is a learnable query q (d) applied *after* the backbone:
A = softmax_i(q . k_i / sqrt(d)) over the last-layer patch tokens k_i = W_k F_i, z = sum_i A_i F_i and
logits = Linear(z). The localization map is A on the patch grid; the SAT area/normalisation losses are not
used.
Works on any backbone; the registry's default is `deit_tiny_patch16_224`, as in the paper.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.base import WSOLModel


class SAT(WSOLModel):
    method = "sat"

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__(backbone, num_classes)
        d = backbone.num_features
        self.query = nn.Parameter(torch.randn(d) * 0.02)
        self.key = nn.Linear(d, d, bias=False)
        self.fc = nn.Linear(d, num_classes)

    def _attend(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = features.flatten(2).transpose(1, 2)  # (B, h*w, d)
        scores = self.key(tokens) @ self.query / math.sqrt(tokens.shape[-1])
        a = torch.softmax(scores, dim=1)
        return a, torch.einsum("bn,bnd->bd", a, tokens)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self._attend(features)[1])

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
            a, _ = self._attend(features)
        return a.view(features.shape[0], *features.shape[2:])
