"""Models: timm backbones, baseline WSOL methods (CAM, DeepMIL, GradCAM++, LayerCAM, SAT), PixelCAM,
pseudo-label samplers and losses, each behind a registry with a `create_*` factory."""

from pixelcam.models.backbones import Backbone, create_backbone, list_backbones
from pixelcam.models.base import WSOLModel, minmax_normalize
from pixelcam.models.factory import create_wsol_model, list_methods, method_class
from pixelcam.models.losses import partial_cross_entropy, pixelcam_loss
from pixelcam.models.samplers import create_sampler, list_samplers

__all__ = [
    "Backbone",
    "WSOLModel",
    "create_backbone",
    "create_sampler",
    "create_wsol_model",
    "list_backbones",
    "list_methods",
    "list_samplers",
    "method_class",
    "minmax_normalize",
    "partial_cross_entropy",
    "pixelcam_loss",
]
