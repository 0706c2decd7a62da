"""Decoding and augmentation of patch batches, as plain numpy/torch functions usable inside Ray Data.

- `decode_batch` (Ray Data `map_batches`, numpy batch format): PNG bytes -> (B, S, S, 3) uint8 resized
  images; masks, when asked for, are decoded at their original size (PxAP resizes maps to the mask).
- `Augment` (the per-epoch `collate_fn` of `iter_torch_batches`): random crop and horizontal/vertical flips
  applied identically to every spatial key (image and mask), then ImageNet normalisation. Each image's
  randomness is a pure function of (seed, epoch, image_id), so a run is reproducible whatever the batch
  composition, the number of Ray Data tasks, or a restart from a checkpoint.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from pixelcam.data.errors import DatasetError
from pixelcam.data.png import decode_mask

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def decode_resize(data: bytes, size: int, where: str) -> np.ndarray:
    """(size, size, 3) uint8 RGB from encoded image bytes (bilinear resize)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im)
    except Exception as exc:
        raise DatasetError(f"{where}: cannot decode image ({exc})") from exc


def decode_batch(batch: dict[str, np.ndarray], size: int, with_masks: bool = False) -> dict[str, np.ndarray]:
    """Ray Data map_batches function: `image` PNG bytes -> uint8 (B, size, size, 3); keeps label, image_id.

    With `with_masks`, `mask` becomes an object array of (H, W) uint8 masks at the original size (None where
    the row has no pixel labels).
    """
    ids = batch["image_id"]
    out = {
        "image": np.stack([decode_resize(b, size, f"image {i}") for b, i in zip(batch["image"], ids)]),
        "label": np.asarray(batch["label"], dtype=np.int64),
        "image_id": np.asarray(ids, dtype=object),
    }
    if with_masks:
        masks = np.empty(len(ids), dtype=object)
        for k, (m, i) in enumerate(zip(batch["mask"], ids)):
            masks[k] = None if m is None else decode_mask(m, where=f"mask of {i}")
        out["mask"] = masks
    return out


def image_seed(seed: int, epoch: int, image_id: str) -> np.random.Generator:
    """The generator of one image's augmentation in one epoch."""
    return np.random.default_rng([seed, epoch, zlib.crc32(str(image_id).encode())])


def crop_flip(arrays: dict[str, np.ndarray], crop: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random `crop` x `crop` window and random h/v flips, the same for every (H, W[, C]) array given."""
    h, w = next(iter(arrays.values())).shape[:2]
    for k, a in arrays.items():
        if a.shape[:2] != (h, w):
            raise ValueError(f"{k}: shape {a.shape[:2]} differs from {(h, w)}; image and mask must align")
    top = int(rng.integers(0, h - crop + 1))
    left = int(rng.integers(0, w - crop + 1))
    hflip, vflip = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    out = {}
    for k, a in arrays.items():
        a = a[top : top + crop, left : left + crop]
        if hflip:
            a = a[:, ::-1]
        if vflip:
            a = a[::-1]
        out[k] = np.ascontiguousarray(a)
    return out


def to_tensor(images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W), ImageNet-normalised."""
    x = torch.from_numpy(
        np.ascontiguousarray(np.stack(images) if not isinstance(images, np.ndarray) else images)
    )
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def normalize(x01: torch.Tensor) -> torch.Tensor:
    """float RGB (B, 3, H, W) in [0, 1] -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x01.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x01.dtype).view(1, 3, 1, 1)
    return (x01 - mean) / std


def unnormalize(images: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised (B, 3, H, W) -> float RGB in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * std + mean).clamp(0, 1)


try:  # Ray Data's collate interface (a plain callable works too, with a deprecation warning)
    from ray.data.collate_fn import NumpyBatchCollateFn as _CollateBase
except ImportError:  # pragma: no cover - ray is a dependency; keeps the transforms importable without it
    _CollateBase = object


class Augment(_CollateBase):
    """collate_fn for one training epoch: numpy batch -> {"image": (B, 3, crop, crop), "label": (B,)}."""

    def __init__(self, crop: int, seed: int, epoch: int) -> None:
        super().__init__()
        self.crop, self.seed, self.epoch = crop, seed, epoch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        images = []
        for img, image_id in zip(batch["image"], batch["image_id"]):
            rng = image_seed(self.seed, self.epoch, image_id)
            images.append(crop_flip({"image": img}, self.crop, rng)["image"])
        return {
            "image": to_tensor(images),
            "label": torch.tensor(np.array(batch["label"]), dtype=torch.long),
        }
