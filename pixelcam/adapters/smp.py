"""segmentation-models-pytorch 0.6: the timm model inside a U-Net's `tu-<name>` encoder, whose weights the
U-Net takes from pixelcam's backbone registry (offline ImageNet weights included). smp documents the
`tu-` encoders but not the attribute holding the timm model (`TimmUniversalEncoder.model`);
`tests/adapters/test_smp.py` checks it is the timm features-only model of that name."""

from __future__ import annotations

from torch import nn


def timm_encoder_model(unet: nn.Module) -> nn.Module:
    """The timm model of an smp `Unet(encoder_name="tu-...")`."""
    model = getattr(unet.encoder, "model", None)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{type(unet.encoder).__name__} has no timm model; expected a `tu-` encoder")
    return model
