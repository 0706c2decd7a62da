"""Merge dataset directories (e.g. an ingested GlaS and an ingested CAMELYON16) into one, so a study can use
both as sources and targets. Files are copied and re-hashed into a temporary sibling, then renamed into
place."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from pixelcam.data.errors import DatasetError
from pixelcam.data.reader import PatchDataset, open_dataset
from pixelcam.data.schema import MANIFEST, SCHEMA_VERSION
from pixelcam.data.writer import check_replaceable, file_sha256, manifest_hash
from pixelcam.storage.atomic import atomic_dir


def merge_datasets(
    inputs: Sequence[str | os.PathLike], out: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Write one dataset holding every domain of `inputs` (domain names must be unique across them)."""
    out = Path(out)
    if len(inputs) < 2:
        raise DatasetError(f"merge needs at least two datasets, got {len(inputs)}")
    check_replaceable(out, overwrite)
    owners: dict[str, Path] = {}
    sets = [open_dataset(p) for p in inputs]
    for ds in sets:
        for d in ds.domains:
            if d in owners:
                raise DatasetError(
                    f"domain {d!r} is in both {owners[d]} and {ds.root}; ingest one with --domain NAME"
                )
            owners[d] = ds.root
    with atomic_dir(out) as tmp:
        domains = {}
        for ds in sets:
            for d in ds.domains:
                domains[d] = _copy_domain(ds, d, tmp)
        manifest = {"schema_version": SCHEMA_VERSION, "hash": manifest_hash(domains), "domains": domains}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        open_dataset(tmp)  # the merged directory validates before it replaces anything
    return out


def _copy_domain(ds: PatchDataset, domain: str, tmp: Path) -> dict:
    """Copy one domain's files into `tmp` (re-hashed: a copy must match the manifest); its manifest entry."""
    info = dict(ds.manifest["domains"][domain])
    files = {}
    for rel in info["files"]:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ds.root / rel, tmp / rel)
        files[rel] = file_sha256(tmp / rel)
        if files[rel] != info["files"][rel]:
            raise DatasetError(f"{ds.root / rel}: content does not match its manifest hash")
    info["files"] = files
    info["bytes"] = {rel: (tmp / rel).stat().st_size for rel in files}
    return info
