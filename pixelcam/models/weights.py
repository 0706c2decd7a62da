"""Backbone weights from a local file pinned by its sha256: a pathology foundation model a lab has downloaded
(UNI, Virchow, Phikon, ... saved as a timm state dict) or any timm architecture's weights.

The file is hashed before it is read, so a truncated download or another release of the model is refused
instead of silently trained on; its tensors must then match the architecture's one by one (a classifier
head the file carries is left out: a backbone has none). Every refusal is one line naming the file and what
was expected. Offline by construction: nothing is fetched.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pixelcam.errors import ConfigError

__all__ = ["WeightsFile", "checked_weights", "fit_weights", "load_weights_file", "read_weights", "sha256_of"]

CHUNK = 1 << 22


@dataclass(frozen=True)
class WeightsFile:
    """A weights file (PyTorch `.pth`/`.pt`/`.bin` state dict or `.safetensors`) and its expected sha256."""

    path: str
    sha256: str


def sha256_of(path: Path) -> str:
    """The file's sha256, read in 4 MiB chunks (a foundation ViT's weights are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_weights(weights: WeightsFile) -> dict[str, torch.Tensor]:
    """The file's tensors, once its sha256 is the pinned one; a checkpoint wrapping its state dict under
    `state_dict` or `model` (common in released checkpoints) is unwrapped."""
    path = Path(weights.path)
    if not path.is_file():
        raise ConfigError(f"{path}: backbone weights file not found (backbone_weights.path)")
    digest = sha256_of(path)
    if digest != weights.sha256.lower():
        raise ConfigError(
            f"{path}: sha256 {digest}, expected {weights.sha256.lower()} (backbone_weights.sha256): "
            f"not the pinned file"
        )
    try:
        state = _load(path)
    except Exception as exc:  # noqa: BLE001 - torch and safetensors raise many types for an unreadable file
        raise ConfigError(f"{path}: cannot read the backbone weights ({str(exc).splitlines()[0]})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict (a mapping of tensor names to tensors)")
    return state


def _load(path: Path) -> object:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:  # memory-mapped: a gigabyte file is not copied before its tensors are checked
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the legacy (pre-1.6) format cannot be mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def fit_weights(
    model: nn.Module, state: dict[str, torch.Tensor], where: str, arch: str
) -> dict[str, torch.Tensor]:
    """The tensors of `state` for `model` (a timm model built without a classifier): every tensor of the
    model present with its shape, nothing else but the classifier `model.pretrained_cfg` names."""
    own = model.state_dict()
    head = str(getattr(model, "pretrained_cfg", {}).get("classifier") or "head")
    extra = [k for k in state if k not in own and k.split(".")[0] not in (head, "head", "fc", "classifier")]
    missing = [k for k in own if k not in state]
    if missing or extra:
        what = f"no tensor {missing[0]!r}" if missing else f"a tensor {extra[0]!r} {arch} does not have"
        more = len(missing) + len(extra) - 1
        raise ConfigError(
            f"{where}: {what}{f' (and {more} more differences)' if more else ''}: weights of another "
            f"architecture than {arch}?"
        )
    for key, tensor in own.items():
        if state[key].shape != tensor.shape:
            raise ConfigError(
                f"{where}: tensor {key!r} is {tuple(state[key].shape)}, {arch}'s is {tuple(tensor.shape)}"
            )
    return {k: state[k] for k in own}


def checked_weights(model: nn.Module, weights: WeightsFile, arch: str) -> dict[str, torch.Tensor]:
    """The pinned file's tensors for `model` (`read_weights`, then `fit_weights`); `model` may be on the
    meta device, to check a file before anything is built for real."""
    return fit_weights(model, read_weights(weights), weights.path, arch)


def load_weights_file(model: nn.Module, weights: WeightsFile, arch: str) -> None:
    """Load the pinned file into `model` (see `checked_weights`)."""
    model.load_state_dict(checked_weights(model, weights, arch))
