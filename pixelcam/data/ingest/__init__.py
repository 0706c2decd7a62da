"""Ingest converters from real dataset layouts into the Parquet schema, in the `INGEST_FORMATS` registry.

Each format builds an `IngestSource` (domain, class names, entries with splits); `ingest` loads, validates and
writes them atomically: any bad file aborts the ingest and leaves no partial dataset behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pixelcam.data.ingest.camelyon16 import CLASS_NAMES as CAMELYON_CLASSES
from pixelcam.data.ingest.camelyon16 import camelyon16_entries
from pixelcam.data.ingest.common import Entry, load_patch
from pixelcam.data.ingest.folder import folder_entries
from pixelcam.data.ingest.glas import CLASS_NAMES as GLAS_CLASSES
from pixelcam.data.ingest.glas import glas_entries
from pixelcam.data.writer import DatasetWriter
from pixelcam.registry import Registry


@dataclass
class IngestSource:
    """What a format yields: the domain name, its classes, the entries and declared sizes (W, H) by id."""

    domain: str
    class_names: list[str]
    entries: list[Entry]
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)


INGEST_FORMATS: Registry[IngestSource] = Registry("ingest format")


@INGEST_FORMATS.register("glas")
def _glas(root: str, seed: int = 0, domain: str = "glas", valcl_fraction: float = 0.2) -> IngestSource:
    return IngestSource(
        domain, GLAS_CLASSES, glas_entries(Path(root), seed=seed, valcl_fraction=valcl_fraction)
    )


@INGEST_FORMATS.register("camelyon16")
def _camelyon16(root: str, folds: str, seed: int = 0, domain: str = "camelyon16") -> IngestSource:
    entries, sizes = camelyon16_entries(Path(root), Path(folds), seed=seed)
    return IngestSource(domain, CAMELYON_CLASSES, entries, sizes)


@INGEST_FORMATS.register("folder")
def _folder(root: str, labels: str, domain: str, classes: str = "normal,cancer") -> IngestSource:
    names = [c.strip() for c in classes.split(",") if c.strip()]
    return IngestSource(domain, names, folder_entries(Path(root), Path(labels), names))


def list_ingest_formats() -> list[str]:
    return INGEST_FORMATS.names()


def ingest(
    fmt: str,
    out: str | os.PathLike,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **kwargs: object,
) -> IngestSource:
    """Convert a dataset in format `fmt` (kwargs: that format's options) into a dataset directory `out`."""
    source = INGEST_FORMATS.create(fmt, **kwargs)
    with DatasetWriter(out, overwrite=overwrite) as writer:
        writer.add_domain(source.domain, source.class_names)
        for i, entry in enumerate(source.entries):
            patch = load_patch(
                entry, source.domain, source.class_names, expected_size=source.sizes.get(entry.image_id)
            )
            writer.write(patch)
            if progress is not None:
                progress(i + 1, len(source.entries))
    return source
