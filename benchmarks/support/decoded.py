"""A domain's train split decoded once into memory: what the bare loops of the benchmarks train on."""

from __future__ import annotations

import numpy as np

from pixelcam.data.decode import decode_batch
from pixelcam.data.reader import PatchDataset


def decode_train(ds: PatchDataset, domain: str, resize: int) -> dict[str, np.ndarray]:
    """The train split of `domain`, decoded and resized once: {"image", "label", "image_id"}."""
    parts = []
    for rb in ds.iter_batches([domain], ["train"], ["image_id", "label", "image"], 64):
        cols = {k: np.asarray(rb.column(k).to_pylist(), dtype=object) for k in rb.schema.names}
        parts.append(decode_batch(cols, resize))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
