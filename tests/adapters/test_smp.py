"""`timm_encoder_model` is the pinned smp's timm features-only model of a `tu-` U-Net encoder: a timm model
of that architecture whose state dict is what the U-Net's encoder holds."""

import segmentation_models_pytorch as smp
import timm
from torch import nn

from pixelcam.adapters.smp import timm_encoder_model


def test_the_tu_encoder_holds_the_timm_model():
    unet = smp.Unet(encoder_name="tu-resnet10t", encoder_weights=None, classes=2)
    model = timm_encoder_model(unet)
    ref = timm.create_model("resnet10t", features_only=True, pretrained=False)
    assert isinstance(model, nn.Module) and set(model.state_dict()) == set(ref.state_dict())
    assert all(p is q for p, q in zip(model.parameters(), unet.encoder.parameters()))
