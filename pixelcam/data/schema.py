"""The Parquet patch schema (DESIGN.md section 2): one row per patch, PNG bytes for image and mask."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 2  # 2: `in_valcl`, `roi_classes` and a content hash; version-1 datasets are still read
READABLE_VERSIONS = (1, 2)
SPLITS: tuple[str, ...] = ("train", "valcl", "valpx", "test")
MANIFEST = "manifest.json"

SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.int64(), nullable=False),
        pa.field("label_name", pa.string(), nullable=False),
        pa.field("image", pa.binary(), nullable=False),  # PNG, RGB
        pa.field("mask", pa.binary(), nullable=True),  # PNG, single channel, 1 = ROI; null = no pixel labels
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),  # provenance, relative to the ingest's --root
        # a valpx image the protocol also counts in valcl (valpx is a subset of valcl): stored once, in valpx
        pa.field("in_valcl", pa.bool_(), nullable=False),
    ]
)
OPTIONAL_COLUMNS = ("in_valcl",)  # absent from version-1 files: read as False


@dataclass(frozen=True)
class Patch:
    """One row of the dataset; `image`/`mask` are PNG bytes (see `pixelcam.data.png`)."""

    image_id: str
    domain: str
    split: str
    label: int
    label_name: str
    image: bytes
    mask: bytes | None
    height: int
    width: int
    source_path: str
    in_valcl: bool = False
    digest: str | None = None  # content digest, when the producer computed it (parallel ingest workers)


def schema_with_metadata(domain: str, class_names: list[str]) -> pa.Schema:
    """SCHEMA plus the key-value metadata every file carries (version, domain, class names)."""
    return SCHEMA.with_metadata(
        {
            b"pixelcam.schema_version": str(SCHEMA_VERSION).encode(),
            b"pixelcam.domain": domain.encode(),
            b"pixelcam.class_names": json.dumps(class_names).encode(),
        }
    )
