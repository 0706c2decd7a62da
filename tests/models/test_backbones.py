"""The offline ImageNet weights of the default backbone: EfficientNet-Lite0 from a registry package, loaded
by position into timm's tf_efficientnet_lite0 with a shape check per tensor."""

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from skimage import data

from pixelcam.models.backbones import (
    create_backbone,
    efficientnet_lite0_weights_file,
    list_backbones,
    load_positional,
)
from pixelcam.runtime.transforms import normalize


def imagenet_input(rgb: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None] / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    return normalize(x)  # ImageNet mean / std


@pytest.mark.parametrize(
    ("image", "klass", "name"), [("chelsea", 285, "Egyptian cat"), ("coffee", 967, "espresso")]
)
def test_imagenet_predictions_of_the_packaged_weights(image: str, klass: int, name: str):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)  # with its 1000-class classifier
    load_positional(model, efficientnet_lite0_weights_file())
    with torch.no_grad():
        p = model.eval()(imagenet_input(getattr(data, image)())).softmax(1)[0]
    assert int(p.argmax()) == klass, name
    assert float(p.max()) > 0.6


def test_backbone_loads_the_same_weights_without_the_classifier():
    assert "efficientnet_lite0" in list_backbones()
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    load_positional(full, efficientnet_lite0_weights_file())
    bb = create_backbone("efficientnet_lite0", pretrained=True).eval()
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(bb(x), full.eval().forward_features(x))
    assert bb.num_features == 1280 and bb(x).shape == (2, 1280, 4, 4)
    scratch = create_backbone("efficientnet_lite0", pretrained=False)
    assert not torch.equal(scratch.model.conv_stem.weight, bb.model.conv_stem.weight)


def test_missing_or_misfit_weights_are_named(tmp_path: Path):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    with pytest.raises(RuntimeError, match="pretrained weights file missing"):
        load_positional(model, tmp_path / "nope.pth")
    src = torch.load(efficientnet_lite0_weights_file(), map_location="cpu", weights_only=True)
    src["_conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(src, tmp_path / "bad.pth")
    with pytest.raises(
        RuntimeError, match=r"tensor _conv_stem.weight \(8, 3, 3, 3\) does not fit conv_stem.weight"
    ):
        load_positional(model, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="tensors, the model"):
        load_positional(timm.create_model("resnet10t", pretrained=False), efficientnet_lite0_weights_file())
