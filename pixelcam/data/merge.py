"""Merge dataset directories (e.g. an ingested GlaS and an ingested CAMELYON16) into one, so a study can use
both as sources and targets. Files are copied and re-hashed into a temporary sibling, then renamed into
place."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pixelcam.data.errors import DatasetError
from pixelcam.data.reader import open_dataset
from pixelcam.data.schema import MANIFEST, SCHEMA_VERSION
from pixelcam.data.writer import check_replaceable, file_sha256, manifest_hash


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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.merge-"))
    try:
        domains = {}
        for ds in sets:
            for d in ds.domains:
                info = dict(ds.manifest["domains"][d])
                files = {}
                for rel in info["files"]:
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(ds.root / rel, tmp / rel)
                    files[rel] = file_sha256(tmp / rel)
                    if files[rel] != info["files"][rel]:
                        raise DatasetError(f"{ds.root / rel}: content does not match its manifest hash")
                info["files"] = files
                domains[d] = info
        manifest = {"schema_version": SCHEMA_VERSION, "hash": manifest_hash(domains), "domains": domains}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        open_dataset(tmp)  # the merged directory validates before it replaces anything
        if out.exists():
            backup = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, backup)
            os.replace(tmp, out)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
