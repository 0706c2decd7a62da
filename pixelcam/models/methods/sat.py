"""SAT (Wu et al. 2023), approximated: a learnable spatial-aware query token attending over the patch tokens.

Approximation (documented): SAT inserts a spatial-aware token into the last transformer blocks of a DeiT-Tiny
and trains it with extra area losses. Here the token is a learnable query q (d) applied *after* the backbone:
A = softmax_i(q . k_i / sqrt(d)) over the last-layer patch tokens k_i = W_k F_i, z = sum_i A_i F_i and
logits = Linear(z). The localization map is A on the patch grid; SAT's area/normalisation losses are not
used. Works on any backbone; the registry's default is `deit_tiny_patch16_224`, as in the paper.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.methods.attention_pool import AttentionPoolModel


class SAT(AttentionPoolModel):
    method = "sat"
    default_backbone = "deit_tiny_patch16_224"

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__(backbone, num_classes)
        d = backbone.num_features
        self.query = nn.Parameter(torch.randn(d) * 0.02)
        self.key = nn.Linear(d, d, bias=False)

    def scores(self, instances: torch.Tensor) -> torch.Tensor:
        return self.key(instances) @ self.query / math.sqrt(instances.shape[-1])
