"""The two input paths over the same Parquet files.

- `train_dataset`: Ray Data over a domain's `train` file(s) (`read_parquet`, or, for a split small enough,
  the file read here and handed over with `from_arrow`), PNG decode + resize in `map_batches`; Ray Train
  shards it to the workers (`get_dataset_shard`) and each epoch iterates it with
  `iter_torch_batches(collate_fn=Augment(...))`.
- `iter_split`: plain PyTorch/pyarrow, single process or one rank's share (rows i with i % world == rank),
  used for validation inside the workers and for `pixelcam evaluate`. Batches keep masks at full size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from pixelcam.data.decode import decode_batch
from pixelcam.data.errors import DatasetError
from pixelcam.data.reader import PatchDataset
from pixelcam.runtime.transforms import to_tensor

if TYPE_CHECKING:
    import ray.data

TRAIN_COLUMNS = ["image_id", "label", "image"]
EVAL_COLUMNS = ["image_id", "label", "image", "mask"]
DECODE_BATCH_SIZE = 32
DATA_TASK_CPUS = 0.5
# Train splits up to this size (Parquet bytes) are read by the process that builds the dataset and handed to
# Ray Data whole (`from_arrow`): `read_parquet` starts a pool of footer-reading actors and read tasks (new
# worker processes) for every dataset it builds, ~2 CPU-s per training run on 2 cores for a split of a few MB
# (benchmarks/data_pipeline.py). Same rows, same order, same blocks (one per file) once decoded; larger
# splits keep the distributed read.
READ_HERE_BYTES = 256 * 2**20


def split_size(ds: PatchDataset, domain: str, split: str) -> int:
    return sum(ds.counts(domain).get(split, {}).values())


def check_splits(ds: PatchDataset, domain: str, splits: tuple[str, ...], where: str = "source") -> None:
    """Raise DatasetError when a needed split of `domain` is empty (or has no pixel labels for valpx)."""
    ds.class_names(domain)  # unknown domain -> DatasetError listing the known ones
    for split in splits:
        if split_size(ds, domain, split) == 0:
            raise DatasetError(f"{ds.location}: {where} domain {domain!r} has an empty {split!r} split")
    if "valpx" in splits:
        masked = ds.manifest["domains"][domain].get("masked", {}).get("valpx")
        if masked == 0:
            raise DatasetError(
                f"{ds.location}: domain {domain!r}: no valpx image has a mask; B-LOC needs them"
            )


def decoded_bytes(ds: PatchDataset, domain: str, resize: int) -> int:
    """Size of the decoded, resized train split (uint8 RGB) in bytes."""
    return split_size(ds, domain, "train") * resize * resize * 3


def train_data_key(domain: str, resize: int, masks: bool) -> str:
    """What identifies a decoded train dataset: runs with the same key can share one materialised copy."""
    return f"{domain}@{resize}{'+masks' if masks else ''}"


def train_dataset(ds: PatchDataset, domain: str, resize: int, cache: bool = False, masks: bool = False):
    """Ray Dataset of decoded, resized `train` images of `domain` (uint8 image, label, image_id; with `masks`,
    for supervised methods, uint8 `mask` (S, S) too: NO_MASK where a row has none, background for classes
    without ROI).

    Lazy by default: every epoch streams read -> decode. With `cache`, the decoded images are materialised
    once in the object store (in a fixed order), which removes the per-epoch pipeline start-up (1-2 s per
    epoch on 2 cores) when the split fits in memory; augmentation still differs per epoch (it is applied
    in the iterator's collate).
    """
    import ray.data

    # one progress line per epoch is ours; Ray Data's "Starting execution ... / Execution plan ..." notes
    # are not (every epoch of every run printed them)
    ray.data.DataContext.get_current().print_on_execution_start = False
    columns = TRAIN_COLUMNS + (["mask"] if masks else [])
    rd = _read_train(ds, domain, columns)
    fn_kwargs: dict = {"size": resize}
    if masks:  # classes without ROI (CAMELYON16 normal) are background everywhere
        roi = set(ds.roi_classes(domain))
        empty = [i for i, n in enumerate(ds.class_names(domain)) if n not in roi]
        fn_kwargs.update(mask_size=resize, empty_labels=empty)
    rd = rd.map_batches(
        decode_batch,
        fn_kwargs=fn_kwargs,
        batch_size=DECODE_BATCH_SIZE,
        batch_format="numpy",
        num_cpus=DATA_TASK_CPUS,
    )
    if cache:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # the cached block order is what the workers are split
        rd = rd.materialize()
    return rd


def _read_train(ds: PatchDataset, domain: str, columns: list[str]) -> ray.data.Dataset:
    """The rows of `domain`'s train split (`columns`) as a Ray Dataset, read here when small enough."""
    import ray.data

    files = ds.uris([domain], ["train"])  # URIs for a remote dataset: read tasks may run on other nodes
    if not files:
        raise DatasetError(f"{ds.location}: domain {domain!r} has no train split")
    if ds.stored_bytes([domain], ["train"]) <= READ_HERE_BYTES:
        return ray.data.from_arrow(ds.read_table([domain], ["train"], columns=columns))
    # Half a CPU per read/decode task: they still run when a Tune trial holds a sliver of a CPU next to
    # the Train workers (a whole-CPU request would wait forever on a fully booked small machine).
    return ray.data.read_parquet(files, shuffle=None, num_cpus=DATA_TASK_CPUS).select_columns(columns)


@dataclass
class EvalBatch:
    """Images (B, 3, S, S) normalised, labels (B,), masks (list of (H, W) uint8 or None), image ids."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: list[np.ndarray | None]
    image_ids: list[str]


def iter_split(
    ds: PatchDataset,
    domain: str,
    split: str,
    resize: int,
    batch_size: int = 32,
    rank: int = 0,
    world: int = 1,
    limit: int | None = None,
) -> Iterator[EvalBatch]:
    """Stream one split of one domain (this rank's rows), decoded and resized, masks at full size."""
    seen = 0
    index = 0
    for rb in ds.iter_batches([domain], [split], columns=EVAL_COLUMNS, batch_size=batch_size * world):
        cols = {name: rb.column(name).to_pylist() for name in EVAL_COLUMNS}
        mine = [i for i in range(rb.num_rows) if (index + i) % world == rank]
        index += rb.num_rows
        if limit is not None:
            mine = mine[: max(0, limit - seen)]
        if not mine:
            continue
        picked = {k: np.asarray([v[i] for i in mine], dtype=object) for k, v in cols.items()}
        dec = decode_batch(picked, resize, with_masks=True)
        seen += len(mine)
        yield EvalBatch(
            images=to_tensor(dec["image"]),
            labels=torch.as_tensor(dec["label"], dtype=torch.long),
            masks=list(dec["mask"]),
            image_ids=[str(i) for i in dec["image_id"]],
        )
        if limit is not None and seen >= limit:
            return
