"""SAT (Wu et al., ICCV 2023): the spatial-aware token's mask is the map; a 3x3 conv + GAP classifies.

The encoder is `SATBackbone` (DeiT-Tiny with the token inside the last blocks, `deit_tiny_sat`). Training
adds SAT's two spatial constraints to the cross-entropy: the batch area loss |mean over the batch of each
map's mean - area| (`area`: 0.35 here, the PixelCAM paper's setting; SAT's own default is 0.25) and the
normalisation loss mean(M~ (1 - M~)) of the map smoothed by a fixed 3x3 Gaussian (zero padding), which pushes
the map toward 0/1. Maps are min-max normalised per image at test time, as every baseline's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelcam.models.backbones import Backbone
from pixelcam.models.base import WSOLModel
from pixelcam.models.sat_backbone import SATBackbone


def gaussian_kernel(size: int = 3, nsig: float = 6.0) -> torch.Tensor:
    """A (size, size) kernel summing to 1: the square root of the outer product of the probability masses of
    `size` equal bins spanning a standard normal over [-nsig - w/2, nsig + w/2], w = (2 nsig + 1) / size."""
    w = (2 * nsig + 1.0) / size
    edges = np.linspace(-nsig - w / 2, nsig + w / 2, size + 1)
    # the standard normal CDF in float64 (torch's: importing scipy.stats costs every worker 0.5 s)
    k1 = np.diff(torch.special.ndtr(torch.from_numpy(edges)).numpy())
    k = np.sqrt(np.outer(k1, k1))
    return torch.tensor(k / k.sum(), dtype=torch.float32)


def sat_losses(maps: torch.Tensor, area: float, kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch area loss, normalisation loss) of maps (B, h, w) in [0, 1]."""
    ba = (maps.flatten(1).mean(1).mean() - area).abs()
    smooth = F.conv2d(maps[:, None], kernel[None, None].to(maps), padding=kernel.shape[-1] // 2)
    return ba, (smooth * (1 - smooth)).flatten(1).mean(1).mean()


class SAT(WSOLModel):
    method = "sat"
    default_backbone = "deit_tiny_sat"

    def __init__(self, backbone: Backbone, num_classes: int, area: float = 0.35) -> None:
        if not isinstance(backbone, SATBackbone):
            raise ValueError(
                f"sat needs the backbone 'deit_tiny_sat' (its token lives inside the transformer), got "
                f"{getattr(backbone, 'name', type(backbone).__name__)!r}"
            )
        super().__init__(backbone, num_classes)
        self.head = nn.Conv2d(backbone.num_features, num_classes, kernel_size=3, padding=1)
        self.area = area
        self.register_buffer("smooth", gaussian_kernel(), persistent=False)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = super().forward(images)
        if self.training:
            ba, norm = sat_losses(self.backbone.maps, self.area, self.smooth)
            out["aux_loss"] = ba + norm
        return out

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        maps = self.backbone.maps  # set by the backbone call that produced `features`
        if maps is None or maps.shape[0] != features.shape[0]:
            raise RuntimeError("SAT's map is read right after the backbone's forward on the same batch")
        return maps if differentiable else maps.detach()
