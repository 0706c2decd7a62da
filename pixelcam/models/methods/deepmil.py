"""DeepMIL: attention-based MIL pooling over the spatial locations of F, in two variants (`mil_attention`).

- `gated` (default; Ilse et al. 2018, the paper the PixelCAM paper cites): one attention map for all classes,
  a_i = softmax_i(w^T (tanh(V h_i) * sigmoid(U h_i))), z = sum_i a_i h_i, logits = Linear(z); the CAM is a,
  so the target class does not change it.
- `per_class` (the official PixelCAM code's variant): non-gated attention with one map per class,
  a_ci = softmax_i(w_c^T tanh(V h_i)), z_c = sum_i a_ci h_i, logit_c = <u_c, z_c> + b_c; the CAM of class c
  is a_c.
- `gated_per_class` (Table 11's DeepMIL, 528,900 head parameters on ResNet-50 with 2 classes): the gated
  scores of `gated` with one attention vector w_c per class, pooled per class as in `per_class`.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.methods.attention_pool import AttentionPoolModel

MIL_ATTENTION = ("gated", "per_class", "gated_per_class")


class DeepMIL(AttentionPoolModel):
    method = "deepmil"
    model_kwargs = ("mil_attention",)

    def __init__(
        self, backbone: Backbone, num_classes: int, hidden: int = 128, mil_attention: str = "gated"
    ) -> None:
        if mil_attention not in MIL_ATTENTION:
            raise ValueError(f"mil_attention must be one of {MIL_ATTENTION}, got {mil_attention!r}")
        super().__init__(backbone, num_classes)
        d = backbone.num_features
        self.mil_attention = mil_attention
        self.v = nn.Linear(d, hidden)
        self.gated = mil_attention != "per_class"
        self.per_class = mil_attention != "gated"
        if self.gated:
            self.u = nn.Linear(d, hidden)
        self.w = nn.Linear(hidden, num_classes if self.per_class else 1)  # w_c per class, or one w

    def scores(self, instances: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.v(instances))
        if self.gated:
            h = h * torch.sigmoid(self.u(instances))
        return self.w(h) if self.per_class else self.w(h).squeeze(-1)  # (B, N, C) or (B, N)

    def attend(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.per_class:
            return super().attend(features)
        instances = features.flatten(2).transpose(1, 2)  # (B, N, d)
        a = torch.softmax(self.scores(instances), dim=1)  # (B, N, C): over locations, per class
        return a, torch.einsum("bnc,bnd->bcd", a, instances)  # z_c: (B, C, d)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        if not self.per_class:
            return super().classify(features)
        _, z = self.attend(features)
        return (z * self.fc.weight[None]).sum(-1) + self.fc.bias  # logit_c = <u_c, z_c> + b_c

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        if not self.per_class:
            return super().raw_cam(features, targets, differentiable)
        a, _ = self.attend(features)  # (B, N, C)
        picked = a.gather(2, targets.view(-1, 1, 1).expand(-1, a.shape[1], 1))[..., 0]
        return picked.view(features.shape[0], *features.shape[2:])
