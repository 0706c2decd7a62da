"""Datasets: the Parquet patch schema, atomic writers, readers, synthetic domains and ingest converters."""

from pixelcam.data.errors import DatasetError
from pixelcam.data.reader import PatchDataset, open_dataset
from pixelcam.data.schema import SCHEMA_VERSION, SPLITS, Patch
from pixelcam.data.writer import DatasetWriter

__all__ = [
    "SCHEMA_VERSION",
    "SPLITS",
    "DatasetError",
    "DatasetWriter",
    "Patch",
    "PatchDataset",
    "open_dataset",
]
