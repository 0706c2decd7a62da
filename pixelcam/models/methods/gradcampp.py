"""GradCAM++ (Chattopadhyay et al. 2018) on a GAP + linear classifier.

With Y_c = exp(S_c), eq. (19) gives alpha^kc_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3), g = dS_c/dA^k_ij, and
w^c_k = sum_ij alpha^kc_ij ReLU(g); the map is ReLU(sum_k w^c_k A^k). The denominator is applied (a widely
copied implementation drops it); where it is zero, alpha is 0.
"""

from __future__ import annotations

import torch

from pixelcam.models.base import feature_gradients
from pixelcam.models.methods.cam import CAM


def gradcampp_weights(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Channel weights (B, d) from activations A and gradients g, both (B, d, h, w) -- eq. (19)."""
    g2, g3 = grads.pow(2), grads.pow(3)
    denom = 2 * g2 + activations.sum(dim=(2, 3), keepdim=True) * g3
    alpha = torch.where(
        denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(denom)
    )
    return (alpha * torch.relu(grads)).sum(dim=(2, 3))


class GradCAMpp(CAM):
    method = "gradcampp"

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        a, g = feature_gradients(self, features, targets, differentiable)
        w = gradcampp_weights(a, g)
        return torch.relu(torch.einsum("bd,bdhw->bhw", w, a))
