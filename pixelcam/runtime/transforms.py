"""Augmentation of decoded patch batches, as plain numpy/torch functions usable inside Ray Data.

- decoding (PNG bytes -> uint8 arrays) is `pixelcam/data/decode.py`'s, torch-free for Ray Data's workers.
- `Augment` (the per-epoch `collate_fn` of `iter_torch_batches`): random crop and horizontal/vertical flips
  applied identically to every spatial key (image and mask), then ImageNet normalisation. Each image's
  randomness is a pure function of (seed, epoch, image_id), so a run is reproducible whatever the batch
  composition, the number of Ray Data tasks, or a restart from a checkpoint.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

from pixelcam.data.decode import NO_MASK

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def image_seed(seed: int, epoch: int, image_id: str) -> np.random.Generator:
    """The generator of one image's augmentation in one epoch."""
    return np.random.default_rng([seed, epoch, zlib.crc32(str(image_id).encode())])


def draw_crop_flip(rng: np.random.Generator, h: int, w: int, crop: int) -> tuple[int, int, bool, bool]:
    """(top, left, hflip, vflip) of one image's augmentation: the one order of draws every path uses."""
    top = int(rng.integers(0, h - crop + 1))
    left = int(rng.integers(0, w - crop + 1))
    return top, left, bool(rng.integers(0, 2)), bool(rng.integers(0, 2))


def crop_flip(arrays: dict[str, np.ndarray], crop: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random `crop` x `crop` window and random h/v flips, the same for every (H, W[, C]) array given."""
    h, w = next(iter(arrays.values())).shape[:2]
    for k, a in arrays.items():
        if a.shape[:2] != (h, w):
            raise ValueError(f"{k}: shape {a.shape[:2]} differs from {(h, w)}; image and mask must align")
    top, left, hflip, vflip = draw_crop_flip(rng, h, w, crop)
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
    return normalize_uint8(x.permute(0, 3, 1, 2))


def normalize(x01: torch.Tensor) -> torch.Tensor:
    """float RGB (B, 3, H, W) in [0, 1] -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x01.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x01.dtype).view(1, 3, 1, 1)
    return (x01 - mean) / std


def unnormalize(images: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised (B, 3, H, W) -> float RGB in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * std + mean).clamp(0, 1)


try:  # Ray Data's collate interface (a plain callable works too, with a deprecation warning)
    from ray.data.collate_fn import NumpyBatchCollateFn as _CollateBase
except ImportError:  # pragma: no cover - ray is a dependency; keeps the transforms importable without it
    _CollateBase = object


def device_crop_flip(images: torch.Tensor, params: torch.Tensor, crop: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) images and (B, 4) [top, left, hflip, vflip] -> uint8 (B, 3, crop, crop) (a
    channels-last view), in one gather on the images' device: `crop_flip`'s result, without a Python loop.
    (B, H, W) masks give (B, crop, crop)."""
    params = params.to(images.device).long()
    steps = torch.arange(crop, device=images.device)
    # a flipped window reads its rows/columns backwards
    rows = params[:, :1] + torch.where(params[:, 3:4] > 0, crop - 1 - steps, steps)
    cols = params[:, 1:2] + torch.where(params[:, 2:3] > 0, crop - 1 - steps, steps)
    b = torch.arange(images.shape[0], device=images.device)[:, None, None]
    out = images[b, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2) if out.dim() == 4 else out  # (B, H, W) masks stay as they are


def normalize_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) on any device -> float ImageNet-normalised, same device and memory format."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float().div_(255.0) - mean) / std


class Augment(_CollateBase):
    """collate_fn for one training epoch: numpy batch -> {"image": (B, 3, crop, crop), "label": (B,)}.

    `on_device` (GPU runs): the collate only draws each image's window and flips; it returns the whole uint8
    (B, H, W, 3) images and {"crop": (B, 5) [top, left, hflip, vflip, crop]}, and the training step crops,
    flips and normalises on the GPU (`device_batch`). The Python per-image work then stays off the training
    process's prefetch thread, whose GIL time slowed the step's kernel launches; the copy is uint8.
    """

    def __init__(self, crop: int, seed: int, epoch: int, on_device: bool = False) -> None:
        super().__init__()
        self.crop, self.seed, self.epoch, self.on_device = crop, seed, epoch, on_device

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        labels = torch.tensor(np.array(batch["label"]), dtype=torch.long)
        with_masks = "mask" in batch  # stacked training masks (supervised methods): cropped with the image
        if self.on_device:
            raw = np.ascontiguousarray(
                np.stack(batch["image"]) if batch["image"].dtype == object else batch["image"]
            )
            h, w = raw.shape[1:3]
            params = [
                (*draw_crop_flip(image_seed(self.seed, self.epoch, i), h, w, self.crop), self.crop)
                for i in batch["image_id"]
            ]
            out = {
                "image": torch.from_numpy(raw),
                "crop": torch.tensor(params, dtype=torch.long),
                "label": labels,
            }
            if with_masks:
                out["mask"] = torch.from_numpy(np.ascontiguousarray(batch["mask"]))
            return out
        images, masks = [], []
        for k, (img, image_id) in enumerate(zip(batch["image"], batch["image_id"])):
            rng = image_seed(self.seed, self.epoch, image_id)
            arrays = {"image": img, "mask": batch["mask"][k]} if with_masks else {"image": img}
            done = crop_flip(arrays, self.crop, rng)
            images.append(done["image"])
            if with_masks:
                masks.append(done["mask"])
        out = {"image": to_tensor(images), "label": labels}
        if with_masks:
            out["mask"] = torch.from_numpy(np.stack(masks))
        return out


def device_batch(
    batch: dict[str, torch.Tensor], device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, masks) of a training batch on `device`: images normalised (B, 3, h, w), as given (float) or
    cropped, flipped and normalised there from an `Augment(on_device=True)` batch; masks (B, h, w) long with
    -1 where there are no pixel labels, or None when the batch has none."""
    images = batch["image"].to(device, non_blocking=True)
    masks = batch["mask"].to(device, non_blocking=True) if "mask" in batch else None
    if "crop" in batch:
        crop = batch["crop"].to(device, non_blocking=True)
        images = device_crop_flip(images, crop[:, :4], int(crop[0, 4]))
        if masks is not None:
            masks = device_crop_flip(masks, crop[:, :4], int(crop[0, 4]))
    if images.dtype == torch.uint8:
        images = normalize_uint8(images)
    if masks is not None:
        masks = masks.long().masked_fill(masks == NO_MASK, -1)
    return images, masks
