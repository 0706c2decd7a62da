"""The WSOL method registry: `list_methods()` and `create_wsol_model(method, backbone, num_classes, ...)`."""

from __future__ import annotations

from pixelcam.models.backbones import Backbone, create_backbone
from pixelcam.models.base import WSOLModel
from pixelcam.models.methods.cam import CAM
from pixelcam.models.methods.deepmil import DeepMIL
from pixelcam.models.methods.gradcampp import GradCAMpp
from pixelcam.models.methods.layercam import LayerCAM
from pixelcam.models.methods.pixelcam import PixelCAM
from pixelcam.models.methods.sat import SAT
from pixelcam.registry import Registry

WSOL_METHODS: Registry[type[WSOLModel]] = Registry("WSOL method")
BASELINES = ("cam", "deepmil", "gradcampp", "layercam", "sat")
DEFAULT_BACKBONE = {"sat": "deit_tiny_patch16_224"}
for _cls in (CAM, DeepMIL, GradCAMpp, LayerCAM, SAT, PixelCAM):
    WSOL_METHODS.register(_cls.method)(_cls)


def list_methods() -> list[str]:
    """Registered method names: the baselines and `pixelcam`."""
    return WSOL_METHODS.names()


def create_wsol_model(
    method: str,
    backbone: str | Backbone | None = None,
    num_classes: int = 2,
    pretrained: bool = False,
    **kwargs: object,
) -> WSOLModel:
    """Build `method` on `backbone` (a registered name or a built `Backbone`; default resnet50, DeiT-Tiny
    for SAT).

    kwargs go to the method (e.g. `pixel_head_depth` for pixelcam, `hidden` for deepmil); None values are
    dropped.
    """
    cls = WSOL_METHODS.get(method)
    if backbone is None:
        backbone = DEFAULT_BACKBONE.get(method, "resnet50")
    if isinstance(backbone, str):
        backbone = create_backbone(backbone, pretrained=pretrained)
    return cls(backbone, num_classes, **{k: v for k, v in kwargs.items() if v is not None})
