"""U-Net (Ronneberger et al. 2015), the fully supervised upper bound of the paper's Tables 1 and 6.

Not hand-written: segmentation-models-pytorch's `Unet` on the timm encoder of the run's backbone (`tu-<timm
name>`), whose weights (ImageNet or scratch, offline included) come from our backbone registry. Trained on the
train split's masks (pixel cross-entropy, images without pixel labels left out). The map is the decoder's FG
probability. The paper reports no CL for U-Net; ours adds smp's classification head (GAP + linear on the
deepest encoder features, trained with cross-entropy) so that the row has one and both B-LOC and B-CL work:
it does not touch the map. Without it (`image_head=False`) a ResNet-50 U-Net has 32,521,250 parameters, the
figure of the paper's Table 11.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelcam.adapters.smp import timm_encoder_model
from pixelcam.models.backbones import Backbone
from pixelcam.models.base import WSOLModel
from pixelcam.models.precision import float32


class _Deepest(nn.Module):
    """The encoder as a backbone: the deepest feature map F (B, d, h, w) and `num_features` (J, reports)."""

    def __init__(self, unet: UNet) -> None:
        super().__init__()
        self._unet = [unet]  # a list: not registered (this view is not part of the U-Net's state)
        self.encoder = (
            unet.net.encoder
        )  # its parameters are the view's (the U-Net does not register the view)
        self.num_features = unet.net.encoder.out_channels[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._unet[0].encode(images)[-1]


class UNet(WSOLModel):
    method = "unet"
    kind = "supervised"
    normalize = False  # a probability already
    model_kwargs = ()

    def __init__(self, backbone: Backbone, num_classes: int, image_head: bool = True) -> None:
        nn.Module.__init__(self)
        import segmentation_models_pytorch as smp

        if getattr(backbone, "is_vit", False) or not hasattr(backbone, "model"):
            raise ValueError(
                f"unet needs a CNN backbone (a timm encoder with feature maps), not {backbone.name!r}"
            )
        self.num_classes = num_classes
        self.backbone_name = backbone.name
        aux = {"classes": num_classes, "pooling": "avg"} if image_head else None
        self.net = smp.Unet(
            encoder_name=f"tu-{backbone.name}", encoder_weights=None, classes=2, aux_params=aux
        )
        _load_encoder(timm_encoder_model(self.net), backbone.model, backbone.name)
        self.stride = int(self.net.encoder.output_stride)

    @property
    def backbone(self) -> _Deepest:  # what reports and the separability index J read as "the features"
        return _Deepest(self)

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.net.encoder(self._pad(images))

    def _pad(self, images: torch.Tensor) -> torch.Tensor:
        """Reflect-pad H and W up to a multiple of the encoder's stride (the decoder's skips must align)."""
        h, w = images.shape[-2:]
        ph, pw = -h % self.stride, -w % self.stride
        return F.pad(images, (0, pw, 0, ph), mode="reflect") if ph or pw else images

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = images.shape[-2:]
        feats = self.encode(images)
        mask = self.net.segmentation_head(self.net.decoder(feats))[..., :h, :w]
        out = {"pixel_logits": mask, "features": feats[-1]}
        out["logits"] = self.classify(feats[-1])
        return out

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        if self.net.classification_head is None:
            raise ValueError("this U-Net has no image head (image_head=False): it gives no class")
        return self.net.classification_head(features)

    def raw_cam(self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool) -> torch.Tensor:
        raise TypeError("a U-Net's map comes from its decoder: call cam(images), not raw_cam(features)")

    def predict(
        self, images: torch.Tensor, target_classes: torch.Tensor | None = None, differentiable: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(image logits (B, C), FG probability of the decoder (B, H, W)): class-agnostic, `target_classes` is
        ignored. A U-Net without an image head gives (B, 0) logits."""
        with torch.set_grad_enabled(differentiable):
            h, w = images.shape[-2:]
            feats = self.encode(images)
            pixel_logits = self.net.segmentation_head(self.net.decoder(feats))[..., :h, :w]
            if self.net.classification_head is None:
                logits = pixel_logits.new_zeros((images.shape[0], 0))
            else:
                logits = self.classify(feats[-1])
            with float32(images.device):
                maps = torch.softmax(pixel_logits.float(), dim=1)[:, 1].clamp(0.0, 1.0)
        return (logits, maps) if differentiable else (logits.detach(), maps.detach())


def _load_encoder(encoder: nn.Module, source: nn.Module, name: str) -> None:
    """Copy the backbone's weights into smp's timm encoder (same timm modules, features only): every encoder
    tensor must find its namesake of the same shape, or the backbone is not this encoder."""
    own, src = encoder.state_dict(), source.state_dict()
    missing = [k for k, v in own.items() if k not in src or src[k].shape != v.shape]
    if missing:
        raise ValueError(
            f"unet: the {name!r} backbone's weights do not fit smp's encoder tu-{name} "
            f"({len(missing)} of {len(own)} tensors, e.g. {missing[0]!r})"
        )
    encoder.load_state_dict({k: src[k] for k in own})
