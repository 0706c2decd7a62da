"""The train split kept in the worker's device memory for the whole run (`train_input: device`).

Streaming (Ray Data every epoch: read, decode, shuffle buffer, collate, host-to-device copy) costs a GPU epoch
of a small split 1.4-1.5x the bare loop on pre-augmented batches (benchmarks/gpu_check.py, section c): the
pipeline restarts each epoch and its Python work competes with the step's kernel launches. Here the worker's
shard is read once, as uint8, onto the device; each epoch then only draws a permutation and every image's
window and flips (the same draws as `Augment`: a pure function of seed, epoch and image id), and the step
crops, flips and normalises on the device (`device_batch`). The batches differ from streaming's in order
only (a seeded permutation instead of Ray Data's shuffle buffer).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from pixelcam.runtime.transforms import draw_crop_flip, image_seed

# "auto" keeps the split on a GPU when it takes at most this share of the device's free memory (the rest is
# for the model, its activations and, with fractional GPUs, the trials beside it)
DEVICE_SHARE = 0.25
LOAD_BATCH = 256


@dataclass
class ResidentSplit:
    """One worker's train rows on `images.device`: uint8 images (N, H, W, 3), labels (N,), ids sorted, and
    uint8 masks (N, H, W) for supervised methods."""

    images: torch.Tensor
    labels: torch.Tensor
    image_ids: list[str]
    masks: torch.Tensor | None = None

    @classmethod
    def load(cls, batches: Iterable[dict[str, np.ndarray]], device: torch.device | str) -> ResidentSplit:
        """Gather numpy batches (`image`, `label`, `image_id`[, `mask`]) onto `device`, sorted by image id, so
        the epochs do not depend on the order the rows arrived in."""
        parts: dict[str, list[np.ndarray]] = {}
        for batch in batches:
            for key in ("image", "label", "image_id", "mask"):
                if key in batch:
                    value = batch[key]
                    parts.setdefault(key, []).append(np.stack(value) if value.dtype == object else value)
        if not parts.get("image_id"):
            raise ValueError("the train shard is empty: no rows to keep on the device")
        ids = np.concatenate(parts["image_id"]).astype(str)
        order = np.argsort(ids, kind="stable")

        def stacked(key: str, dtype: torch.dtype) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(np.concatenate(parts[key])[order])).to(device, dtype)

        return cls(
            images=stacked("image", torch.uint8),
            labels=stacked("label", torch.long),
            image_ids=[str(i) for i in ids[order]],
            masks=stacked("mask", torch.uint8) if "mask" in parts else None,
        )

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def nbytes(self) -> int:
        extra = self.masks.numel() if self.masks is not None else 0
        return self.images.numel() + extra + self.labels.numel() * 8

    def crop_params(self, crop: int, seed: int, epoch: int) -> torch.Tensor:
        """(N, 5) [top, left, hflip, vflip, crop] of every image this epoch: `Augment`'s draws."""
        h, w = self.images.shape[1:3]
        rows = [(*draw_crop_flip(image_seed(seed, epoch, i), h, w, crop), crop) for i in self.image_ids]
        return torch.tensor(rows, dtype=torch.long)

    def epoch(
        self, batch_size: int, crop: int, seed: int, epoch: int, shuffle_seed: int, steps: int | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """One epoch of `Augment(on_device=True)`-style batches (whole uint8 images on the device and their
        `crop` parameters on the host), in a permutation drawn from `shuffle_seed`; `steps` caps the number
        of batches (DDP ranks with unequal shards stop together)."""
        params = self.crop_params(crop, seed, epoch)
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(shuffle_seed))
        starts = range(0, len(self), batch_size)
        for start in starts if steps is None else starts[:steps]:
            idx = order[start : start + batch_size]
            on_device = idx.to(self.images.device, non_blocking=True)
            batch = {"image": self.images[on_device], "crop": params[idx], "label": self.labels[on_device]}
            if self.masks is not None:
                batch["mask"] = self.masks[on_device]
            yield batch


def keep_on_device(choice: str, nbytes: int, device: torch.device) -> bool:
    """Whether a split of `nbytes` decoded bytes goes to the device: "device" always, "stream" never, "auto"
    on a GPU when it takes at most DEVICE_SHARE of the free memory (streaming stays the CPU's path: there
    the step and the pipeline share the same cores, and numbers stay as they were)."""
    if choice != "auto":
        return choice == "device"
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_SHARE * free


def equal_steps(rows: int, batch_size: int, world: int) -> int:
    """Batches per epoch every rank takes: its own count, or under DDP the fewest of any rank's (a rank with
    more rows would otherwise wait forever in an all-reduce the others never join)."""
    steps = -(-rows // batch_size)
    if world > 1:
        import torch.distributed as dist

        t = torch.tensor([steps], device=torch.device("cuda") if dist.get_backend() == "nccl" else None)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        steps = int(t.item())
    return steps
