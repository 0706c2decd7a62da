"""GradCAM++ (Chattopadhyay et al. 2018) on a GAP + linear classifier.

With Y_c = exp(S_c), eq. (19) gives alpha^kc_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3), g = dS_c/dA^k_ij, and
w^c_k = sum_ij alpha^kc_ij ReLU(g); the map is ReLU(sum_k w^c_k A^k). Two variants (`gradcampp_variant`,
recorded with every run):
- `eq19` (default: the method as published): the denominator applied; where it is zero, alpha is 0.
- `official`: the official PixelCAM code's, whose denominator is never applied (an in-place division of
  a boolean-indexed copy, in a widely copied implementation), so alpha = g^2 and w^c_k = sum_ij g^2 ReLU(g).
  The paper's GradCAM++ numbers came from it, so the paper specs use it.
"""

from __future__ import annotations

import torch

from pixelcam.models.backbones import Backbone
from pixelcam.models.base import feature_gradients
from pixelcam.models.methods.cam import CAM

GRADCAMPP_VARIANTS = ("eq19", "official")


def gradcampp_weights(activations: torch.Tensor, grads: torch.Tensor, variant: str = "eq19") -> torch.Tensor:
    """Channel weights (B, d) from activations A and gradients g, both (B, d, h, w): eq. (19), or the
    official code's alpha = g^2 (`variant="official"`)."""
    g2, g3 = grads.pow(2), grads.pow(3)
    if variant == "official":
        return (g2 * torch.relu(grads)).sum(dim=(2, 3))
    denom = 2 * g2 + activations.sum(dim=(2, 3), keepdim=True) * g3
    alpha = torch.where(
        denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(denom)
    )
    return (alpha * torch.relu(grads)).sum(dim=(2, 3))


class GradCAMpp(CAM):
    method = "gradcampp"
    model_kwargs = ("gradcampp_variant",)

    def __init__(self, backbone: Backbone, num_classes: int, gradcampp_variant: str = "eq19") -> None:
        if gradcampp_variant not in GRADCAMPP_VARIANTS:
            raise ValueError(
                f"gradcampp_variant must be one of {GRADCAMPP_VARIANTS}, got {gradcampp_variant!r}"
            )
        super().__init__(backbone, num_classes)
        self.gradcampp_variant = gradcampp_variant

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        a, g = feature_gradients(self, features, targets, differentiable)
        w = gradcampp_weights(a, g, self.gradcampp_variant)
        return torch.relu(torch.einsum("bd,bdhw->bhw", w, a))
