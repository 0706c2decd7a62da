"""A timm model wrapped to return the last spatial feature map F (B, d, h, w); registered in `backbones`."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import timm
import torch
from torch import nn


@cache  # a study spec asks once per model label
def is_token_model(name: str) -> bool:
    """Whether timm's `name` is a token model with a patch grid (ViT, DeiT, EVA, ...): built on the meta
    device (no memory, no weights) and asked for its patch embedding and prefix tokens."""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False, num_classes=0)
    return hasattr(model, "patch_embed") and hasattr(model, "num_prefix_tokens")


class Backbone(nn.Module):
    """A timm model exposing `forward(x) -> F (B, d, h, w)` and `num_features` (d)."""

    def __init__(
        self,
        name: str,
        pretrained: bool = False,
        is_vit: bool | None = False,
        weights: Callable[[nn.Module], None] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__()
        self.name = name
        self.is_vit = is_token_model(name) if is_vit is None else is_vit
        if self.is_vit:
            kwargs.setdefault("dynamic_img_size", True)  # any input size: the patch grid follows the image
        if weights is not None:  # weights of our own (offline): build bare, then load them
            self.model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
            if pretrained:
                weights(self.model)
            self.num_features = int(self.model.num_features)
            return
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
