"""The train split kept on the device: read once, then per epoch the same augmentation draws as the streamed
path (`Augment`), every image once, in a seeded order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist

from pixelcam.runtime.resident import ResidentSplit, equal_steps, keep_on_device
from pixelcam.runtime.transforms import Augment, device_batch


def _rows(n: int, size: int = 12, masks: bool = False) -> list[dict[str, np.ndarray]]:
    """Two numpy batches as Ray Data hands them, ids in no particular order."""
    rng = np.random.default_rng(0)
    ids = np.asarray([f"img-{(7 * i) % n:03d}" for i in range(n)], dtype=object)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = np.asarray([int(i[-1]) % 2 for i in ids], dtype=np.int64)
    batch = {"image": images, "label": labels, "image_id": ids}
    if masks:
        batch["mask"] = rng.integers(0, 2, (n, size, size), dtype=np.uint8)
    half = n // 2
    return [{k: v[:half] for k, v in batch.items()}, {k: v[half:] for k, v in batch.items()}]


def _by_id(parts: list[dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    return {
        str(b["image_id"][i]): {k: v[i] for k, v in b.items()} for b in parts for i in range(len(b["label"]))
    }


def test_load_sorts_by_id_and_keeps_uint8():
    parts = _rows(10, masks=True)
    split = ResidentSplit.load(parts, "cpu")
    assert split.image_ids == sorted(split.image_ids) and len(split) == 10
    assert split.images.dtype == torch.uint8 and split.images.shape == (10, 12, 12, 3)
    rows = _by_id(parts)
    for k, i in enumerate(split.image_ids):
        assert torch.equal(split.images[k], torch.from_numpy(rows[i]["image"]))
        assert torch.equal(split.masks[k], torch.from_numpy(rows[i]["mask"]))
        assert int(split.labels[k]) == rows[i]["label"]
    assert split.nbytes == 10 * 12 * 12 * 3 + 10 * 12 * 12 + 10 * 8
    with pytest.raises(ValueError, match="empty"):
        ResidentSplit.load([], "cpu")


@pytest.mark.parametrize("masks", [False, True])
def test_an_epoch_is_every_image_once_with_the_streamed_paths_augmentation(masks: bool):
    """Each batch, cropped and normalised by the step's `device_batch`, equals the CPU `Augment` of the same
    rows (the streamed path's collate): the same windows and flips, whatever the order."""
    parts = _rows(11, masks=masks)
    rows = _by_id(parts)
    split = ResidentSplit.load(parts, "cpu")
    seen = []
    for batch in split.epoch(batch_size=4, crop=8, seed=3, epoch=2, shuffle_seed=9):
        ids = [split.image_ids[int(k)] for k in _positions(split, batch)]
        seen += ids
        images, got_masks = device_batch(batch, "cpu")
        ref = Augment(8, 3, 2)({k: np.stack([rows[i][k] for i in ids]) for k in rows[ids[0]]})
        torch.testing.assert_close(images, ref["image"])
        assert torch.equal(batch["label"], ref["label"])
        if masks:
            assert torch.equal(got_masks, ref["mask"].long())
    assert sorted(seen) == split.image_ids  # every image once


def _positions(split: ResidentSplit, batch: dict[str, torch.Tensor]) -> list[int]:
    """Which rows a batch holds (images are random, so each is unique)."""
    flat = split.images.reshape(len(split), -1)
    return [int((flat == img.reshape(1, -1)).all(1).nonzero()[0]) for img in batch["image"]]


def test_the_order_is_a_function_of_the_shuffle_seed_and_steps_cap_it():
    split = ResidentSplit.load(_rows(10), "cpu")

    def order(seed: int, **kw) -> list[list[int]]:
        return [_positions(split, b) for b in split.epoch(3, 8, 0, 0, seed, **kw)]

    assert order(1) == order(1) and order(1) != order(2)
    assert [len(b) for b in order(1)] == [3, 3, 3, 1]  # the last batch partial, as the streamed path's
    assert order(1, steps=2) == order(1)[:2]


def test_where_the_split_goes():
    cpu = torch.device("cpu")
    assert keep_on_device("device", 10, cpu) and not keep_on_device("stream", 10, cpu)
    assert not keep_on_device("auto", 10, cpu)  # the CPU streams: its numbers stay as they were


def test_equal_steps(tmp_path):
    assert equal_steps(10, 4, 1) == 3 and equal_steps(8, 4, 1) == 2
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        assert equal_steps(10, 4, 2) == 3  # the all-reduce (MIN) over the group
    finally:
        dist.destroy_process_group()
