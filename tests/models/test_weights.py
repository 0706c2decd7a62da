"""Backbones from a local weights file pinned by its sha256 (`pixelcam.models.weights`): any timm architecture
by `timm:ARCH`, the file's hash computed here with hashlib, its tensors compared one by one with the model's;
a wrong hash, another architecture, a missing tensor or file refused in one line naming the file."""

import hashlib
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from pixelcam.config import TrainConfig
from pixelcam.errors import ConfigError
from pixelcam.models.backbones import check_backbone, create_backbone, is_vit_backbone
from pixelcam.models.weights import WeightsFile

ARCH = "vit_tiny_patch16_224"  # a small stand-in for a pathology foundation ViT (UNI, Virchow: ViT-L/H)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A "released" ViT's state dict, with the classifier head it was trained with (3 classes)."""
    torch.manual_seed(0)
    state = timm.create_model(ARCH, pretrained=False, num_classes=3).state_dict()
    path = tmp_path_factory.mktemp("weights") / "vit.pth"
    torch.save(state, path)
    return path, state


def _assert_loaded(backbone, state: dict[str, torch.Tensor]) -> None:
    own = backbone.model.state_dict()
    assert set(own) == {k for k in state if not k.startswith("head.")}  # the head left out, nothing else
    assert all(torch.equal(own[k], state[k]) for k in own)


def test_any_timm_architecture_starts_from_the_pinned_file(released):
    path, state = released
    backbone = create_backbone(f"timm:{ARCH}", weights=WeightsFile(str(path), _sha256(path)))
    _assert_loaded(backbone, state)
    assert backbone.is_vit and is_vit_backbone(f"timm:{ARCH}") and not is_vit_backbone("timm:resnet18")
    with torch.no_grad():  # a token model's patch grid at any input size (64 px: 4 x 4 patches of 16)
        assert backbone(torch.zeros(2, 3, 64, 64)).shape == (2, 192, 4, 4)


def test_safetensors_and_a_wrapped_state_dict_load_alike(released, tmp_path: Path):
    path, state = released
    st = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    wrapped = tmp_path / "ckpt.pth"
    torch.save({"model": state, "epoch": 100}, wrapped)  # as many released checkpoints are
    for f in (st, wrapped):
        _assert_loaded(create_backbone(f"timm:{ARCH}", weights=WeightsFile(str(f), _sha256(f))), state)


def test_a_registered_backbone_takes_a_weights_file_too(tmp_path: Path):
    state = timm.create_model("resnet10t", pretrained=False, num_classes=0).state_dict()
    path = tmp_path / "r.pth"
    torch.save(state, path)
    _assert_loaded(create_backbone("resnet10t", weights=WeightsFile(str(path), _sha256(path))), state)


def test_another_file_than_the_pinned_one_is_refused(released):
    path, _ = released
    pinned = "0" * 64
    with pytest.raises(ConfigError) as err:
        create_backbone(f"timm:{ARCH}", weights=WeightsFile(str(path), pinned))
    assert str(err.value) == (
        f"{path}: sha256 {_sha256(path)}, expected {pinned} (backbone_weights.sha256): not the pinned file"
    )


def test_weights_of_another_architecture_are_refused_naming_a_tensor(tmp_path: Path):
    path = tmp_path / "small.pth"
    torch.save(timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0).state_dict(), path)
    with pytest.raises(ConfigError) as err:
        create_backbone(f"timm:{ARCH}", weights=WeightsFile(str(path), _sha256(path)))
    assert str(err.value) == f"{path}: tensor 'cls_token' is (1, 1, 384), timm:{ARCH}'s is (1, 1, 192)"


def test_a_missing_tensor_a_missing_file_and_not_a_state_dict(released, tmp_path: Path):
    _, state = released
    part = tmp_path / "part.pth"
    torch.save({k: v for k, v in state.items() if k != "norm.bias"}, part)
    with pytest.raises(
        ConfigError, match=r"part\.pth: no tensor 'norm.bias': weights of another architecture"
    ):
        create_backbone(f"timm:{ARCH}", weights=WeightsFile(str(part), _sha256(part)))
    with pytest.raises(ConfigError, match=r"nope\.pth: backbone weights file not found"):
        create_backbone(f"timm:{ARCH}", weights=WeightsFile(str(tmp_path / "nope.pth"), "0" * 64))
    listed = tmp_path / "list.pth"
    torch.save([1, 2], listed)
    with pytest.raises(ConfigError, match=r"list\.pth: not a state dict"):
        create_backbone(f"timm:{ARCH}", weights=WeightsFile(str(listed), _sha256(listed)))


def test_backbone_names_and_weights_in_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert check_backbone("resnet10t") == "resnet10t" and check_backbone(f"timm:{ARCH}") == f"timm:{ARCH}"
    with pytest.raises(ConfigError, match=r"backbone: unknown timm architecture 'vit_nope'"):
        TrainConfig.from_dict({"backbone": "timm:vit_nope"})
    with pytest.raises(
        ConfigError, match=r"backbone: unknown value 'nope'; expected one of \[.*\] or timm:ARCH"
    ):
        TrainConfig.from_dict({"backbone": "nope"})
    with pytest.raises(ConfigError, match=r"backbone_weights.sha256"):
        TrainConfig.from_dict({"backbone_weights": {"path": "w.pth", "sha256": "abc"}})
    with pytest.raises(ConfigError, match=r"backbone_weights: set beside pretrained: true"):
        TrainConfig.from_dict({"pretrained": True, "backbone_weights": {"path": "w.pth", "sha256": "0" * 64}})
    monkeypatch.chdir(tmp_path)  # recorded absolute: a Ray worker's working directory is not the user's
    cfg = TrainConfig.from_dict({"backbone_weights": {"path": "w.pth", "sha256": "0" * 64}})
    assert cfg.backbone_weights.path == str(tmp_path / "w.pth")
