"""Decoding of patch batches with numpy and Pillow only: what Ray Data's decode tasks run.

The decode tasks' worker processes unpickle `decode_batch` by its module; here that module imports no torch
(~1.8 CPU-s less per worker process on 2 cores than `pixelcam.runtime.transforms`, whose augmentation needs
it), and a training run or study starts several such workers.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from pixelcam.data.errors import DatasetError
from pixelcam.data.png import decode_mask


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


NO_MASK = 255  # a training mask's value where the image has no pixel labels (left out of the loss)


def decode_batch(
    batch: dict[str, np.ndarray],
    size: int,
    with_masks: bool = False,
    mask_size: int | None = None,
    empty_labels: Sequence[int] = (),
) -> dict[str, np.ndarray]:
    """Ray Data map_batches function: `image` PNG bytes -> uint8 (B, size, size, 3); keeps label, image_id.

    With `with_masks`, `mask` becomes an object array of (H, W) uint8 masks at the original size (None where
    the row has no pixel labels). With `mask_size` (supervised training), masks are resized (nearest) and
    stacked to uint8 (B, mask_size, mask_size): NO_MASK where a row has none, except rows of `empty_labels`
    (classes without ROI, e.g. CAMELYON16 normal), which are background everywhere.
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
    if mask_size is not None:
        stacked = np.full((len(ids), mask_size, mask_size), NO_MASK, dtype=np.uint8)
        for k, (m, i, y) in enumerate(zip(batch["mask"], ids, out["label"])):
            if m is not None:
                mask = Image.fromarray(decode_mask(m, where=f"mask of {i}"))
                stacked[k] = np.asarray(mask.resize((mask_size, mask_size), Image.NEAREST))
            elif int(y) in empty_labels:
                stacked[k] = 0
        out["mask"] = stacked
    return out
