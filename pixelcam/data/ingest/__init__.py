"""Ingest converters from real dataset layouts into the Parquet schema, in the `INGEST_FORMATS` registry.

Each format builds an `IngestSource` (domain, class names, which classes carry an ROI, entries with splits,
declared sizes, notes); `ingest` loads and checks the images in parallel (every core; PNGs keep their bytes),
streams them into the writer in listed order with bounded memory, and writes atomically: any bad file aborts
the ingest and leaves no partial dataset behind.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pixelcam.data.errors import DatasetError
from pixelcam.data.ingest.camelyon16 import CLASS_NAMES as CAMELYON_CLASSES
from pixelcam.data.ingest.camelyon16 import ROI_CLASSES as CAMELYON_ROI
from pixelcam.data.ingest.camelyon16 import camelyon16_folds
from pixelcam.data.ingest.common import Entry, load_patch
from pixelcam.data.ingest.folder import folder_entries
from pixelcam.data.ingest.glas import CLASS_NAMES as GLAS_CLASSES
from pixelcam.data.ingest.glas import ROI_CLASSES as GLAS_ROI
from pixelcam.data.ingest.glas import glas_entries, glas_folds
from pixelcam.data.schema import SPLITS, Patch
from pixelcam.data.writer import DatasetWriter
from pixelcam.registry import Registry

PARALLEL_FROM = 64  # fewer images load in this process (a worker pool costs more than it saves)


@dataclass
class IngestSource:
    """What a format yields: the domain, its classes and those with an ROI, the entries, the sizes the
    source declares (image id -> (W, H, where stated)), the dataset root and notes for the user."""

    domain: str
    class_names: list[str]
    entries: list[Entry]
    sizes: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    roi_classes: list[str] | None = None  # None: every class but the first (label 0 = no ROI)
    root: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits the source fills (a fold excerpt may have no train)."""
        return tuple(s for s in SPLITS if any(e.split == s for e in self.entries))

    @property
    def roi_labels(self) -> set[int]:
        roi = self.class_names[1:] if self.roi_classes is None else self.roi_classes
        return {i for i, n in enumerate(self.class_names) if n in roi}


INGEST_FORMATS: Registry[IngestSource] = Registry("ingest format")


@INGEST_FORMATS.register("glas")
def _glas(
    root: str, folds: str | None = None, seed: int = 0, domain: str = "glas", valcl_fraction: float = 0.2
) -> IngestSource:
    if folds is not None:
        f = glas_folds(Path(root), Path(folds), seed=seed)
        return IngestSource(domain, f.class_names, f.entries, f.sizes, GLAS_ROI, Path(root), f.notes)
    entries = glas_entries(Path(root), seed=seed, valcl_fraction=valcl_fraction)
    return IngestSource(domain, GLAS_CLASSES, entries, roi_classes=GLAS_ROI, root=Path(root))


@INGEST_FORMATS.register("camelyon16")
def _camelyon16(root: str, folds: str, seed: int = 0, domain: str = "camelyon16") -> IngestSource:
    f = camelyon16_folds(Path(root), Path(folds), seed=seed)
    roi = (
        [n for n in f.class_names if n in CAMELYON_ROI] if f.class_names != CAMELYON_CLASSES else CAMELYON_ROI
    )
    return IngestSource(domain, f.class_names, f.entries, f.sizes, roi, Path(root), f.notes)


@INGEST_FORMATS.register("folder")
def _folder(root: str, labels: str, domain: str, classes: str = "normal,cancer") -> IngestSource:
    names = [c.strip() for c in classes.split(",") if c.strip()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if len(names) < 2 or repeated:
        raise DatasetError(f"--classes {classes!r}: expected two or more distinct names, label 0 first")
    return IngestSource(domain, names, folder_entries(Path(root), Path(labels), names), root=Path(root))


def list_ingest_formats() -> list[str]:
    return INGEST_FORMATS.names()


def _load_chunk(
    tasks: list[tuple[Entry, tuple[int, int, str] | None]],
    domain: str,
    class_names: list[str],
    roi_labels: set[int],
    root: Path | None,
) -> list[Patch]:
    return [load_patch(e, domain, class_names, roi_labels, size, root) for e, size in tasks]


def load_patches(source: IngestSource, workers: int | None = None, chunk: int = 4) -> Iterator[Patch]:
    """The source's patches in listed order, decoded and checked by `workers` processes (default: every
    core). At most `4 * workers` chunks are in flight, so memory stays bounded whatever the dataset size."""
    workers = workers or os.cpu_count() or 1
    common = (source.domain, source.class_names, source.roi_labels, source.root)
    tasks = [(e, source.sizes.get(e.image_id)) for e in source.entries]
    chunks = (tasks[i : i + chunk] for i in range(0, len(tasks), chunk))
    if workers == 1 or len(tasks) < PARALLEL_FROM:
        for c in chunks:
            yield from _load_chunk(c, *common)
        return
    # spawn: the parent holds open Parquet writers (threads); forked children must not inherit them
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending: deque = deque()
        for c in chunks:
            pending.append(pool.submit(_load_chunk, c, *common))
            if len(pending) >= 4 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def ingest(
    fmt: str,
    out: str | os.PathLike,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    **kwargs: object,
) -> IngestSource:
    """Convert a dataset in format `fmt` (kwargs: that format's options) into a dataset directory `out`."""
    source = INGEST_FORMATS.create(fmt, **kwargs)
    roi = [source.class_names[i] for i in sorted(source.roi_labels)]
    # every split is required, except in an evaluation-only source (fold files without train/)
    required = SPLITS if "train" in source.splits else source.splits
    with DatasetWriter(out, overwrite=overwrite, required_splits=required) as writer:
        writer.add_domain(source.domain, source.class_names, roi_classes=roi)
        for i, patch in enumerate(load_patches(source, workers)):
            writer.write(patch)
            if progress is not None:
                progress(i + 1, len(source.entries))
    return source
