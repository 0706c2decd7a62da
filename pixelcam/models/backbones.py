"""timm backbones wrapped to return the last spatial feature map F (B, d, h, w).

CNNs use timm's `forward_features`; ViT/DeiT tokens drop their prefix (class/distillation) tokens and are
reshaped to the patch grid. `pretrained=True` goes through timm's own weight loading (Hugging Face hub); tests
and the offline default use `pretrained=False`.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from pixelcam.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")


class Backbone(nn.Module):
    """A timm model exposing `forward(x) -> F (B, d, h, w)` and `num_features` (d)."""

    def __init__(self, name: str, pretrained: bool = False, is_vit: bool = False, **kwargs: object) -> None:
        super().__init__()
        self.name = name
        self.is_vit = is_vit
        if is_vit:
            kwargs.setdefault("dynamic_img_size", True)  # any input size: the patch grid follows the image
        try:
            self.model = timm.create_model(name, pretrained=pretrained, num_classes=0, **kwargs)
        except Exception as exc:
            if pretrained:
                raise RuntimeError(
                    f"backbone {name!r}: could not load pretrained weights through timm ({exc}); check "
                    f"network "
                    f"access to the Hugging Face hub or a local cache (HF_HOME), or use pretrained=False"
                ) from exc
            raise
        self.num_features = int(self.model.num_features)

    def pretrained_cfg(self) -> dict:
        """timm's data settings (input size, mean, std) for this backbone."""
        return dict(self.model.pretrained_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_features(x)
        if not self.is_vit:
            return feats
        tokens = feats[:, self.model.num_prefix_tokens :]
        h, w = self.model.patch_embed.dynamic_feat_size(x.shape[-2:])
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, h, w)


def _register(name: str, is_vit: bool = False) -> None:
    BACKBONES.register(name)(lambda pretrained=False, **kw: Backbone(name, pretrained, is_vit, **kw))


for _name in ("resnet50", "resnet18", "resnet10t", "vgg16", "inception_v3"):
    _register(_name)
_register("deit_tiny_patch16_224", is_vit=True)


def list_backbones() -> list[str]:
    return BACKBONES.names()


def create_backbone(name: str, pretrained: bool = False, **kwargs: object) -> Backbone:
    """Build a registered backbone; kwargs go to `timm.create_model` (None values are dropped)."""
    return BACKBONES.create(name, pretrained=pretrained, **kwargs)
