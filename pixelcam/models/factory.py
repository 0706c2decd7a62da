"""The WSOL method registry: `list_methods(kind=...)`, `method_class(name)` and
`create_wsol_model(method, backbone, num_classes, ...)`. What a method is (a baseline or a pseudo-label
method, its normalisation, its extra settings, its default backbone) is declared on its class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pixelcam.models.backbones import Backbone, create_backbone
from pixelcam.models.base import WSOLModel
from pixelcam.models.methods.cam import CAM
from pixelcam.models.methods.deepmil import DeepMIL
from pixelcam.models.methods.gradcampp import GradCAMpp
from pixelcam.models.methods.layercam import LayerCAM
from pixelcam.models.methods.negev import NEGEV
from pixelcam.models.methods.pixelcam import PixelCAM
from pixelcam.models.methods.sat import SAT
from pixelcam.models.methods.unet import UNet
from pixelcam.models.weights import WeightsFile
from pixelcam.registry import Registry

WSOL_METHODS: Registry[type[WSOLModel]] = Registry("WSOL method")
METHOD_KINDS = ("baseline", "pseudo_labels", "supervised")
for _cls in (CAM, DeepMIL, GradCAMpp, LayerCAM, SAT, PixelCAM, NEGEV, UNet):
    WSOL_METHODS.register(_cls.method)(_cls)


def list_methods(kind: str | None = None) -> list[str]:
    """Registered method names, all or those of one kind (`baseline`, `pseudo_labels`, `supervised`)."""
    if kind is not None and kind not in METHOD_KINDS:
        raise ValueError(f"unknown method kind {kind!r}; expected one of {METHOD_KINDS}")
    return [n for n in WSOL_METHODS.names() if kind is None or WSOL_METHODS.get(n).kind == kind]


def method_class(method: str) -> type[WSOLModel]:
    """The class registered as `method` (its metadata: kind, normalisation, defaults); KeyError otherwise."""
    return WSOL_METHODS.get(method)


def model_kwargs(method: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor settings `method` declares, taken from `settings` (a config or checkpoint meta)."""
    return {k: settings[k] for k in method_class(method).model_kwargs if k in settings}


def create_wsol_model(
    method: str,
    backbone: str | Backbone | None = None,
    num_classes: int = 2,
    pretrained: bool = False,
    weights: WeightsFile | None = None,
    **kwargs: object,
) -> WSOLModel:
    """Build `method` on `backbone` (a registered name, `timm:ARCH` or a built `Backbone`; default: the
    method's own), starting from ImageNet weights (`pretrained`), a pinned local file (`weights`) or random.

    kwargs go to the method (e.g. `pixel_head_depth` for pixelcam, `hidden` for deepmil); None values are
    dropped.
    """
    cls = WSOL_METHODS.get(method)
    if backbone is None:
        backbone = cls.default_backbone
    if isinstance(backbone, str):
        backbone = create_backbone(backbone, pretrained=pretrained, weights=weights)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if cls.classifier_setting:  # a method carrying a baseline's classifier (NEGEV, PixelCAM): that baseline
        name = kwargs.pop(cls.classifier_setting, None) or cls.default_classifier
        own = {k: kwargs.pop(k) for k in cls.classifier_kwargs if k in kwargs}
        if name is not None:
            own = {k: v for k, v in own.items() if k in method_class(name).model_kwargs}
            kwargs["classifier"] = create_wsol_model(name, backbone, num_classes, **own)
    return cls(backbone, num_classes, **kwargs)
