"""Open a dataset directory written by `DatasetWriter` and read rows by domain and split."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pixelcam.data.errors import DatasetError
from pixelcam.data.schema import MANIFEST, SCHEMA, SCHEMA_VERSION, SPLITS


def is_uri(path: str | os.PathLike) -> bool:
    """True for `scheme://...` locations (s3://, gs://, hdfs://, file://) read through pyarrow filesystems."""
    return "://" in str(path)


@dataclass(frozen=True)
class PatchDataset:
    """A validated dataset directory: its manifest and the Parquet files per (split, domain).

    Local directories have `filesystem=None`; a URI (`s3://bucket/ds`, `gs://...`, `file:///...`) is opened
    with `pyarrow.fs.FileSystem.from_uri` (credentials from the usual environment variables or instance
    roles), and `root` is then the path inside that filesystem.
    """

    root: Path
    manifest: dict
    filesystem: pafs.FileSystem | None = None
    uri: str = ""

    @property
    def location(self) -> str:
        """Where the dataset is, as the user gave it (for messages and provenance)."""
        return self.uri or str(self.root)

    @property
    def hash(self) -> str:
        """Content hash of all Parquet files (recorded with every run that reads this dataset)."""
        return self.manifest["hash"]

    @property
    def domains(self) -> list[str]:
        return sorted(self.manifest["domains"])

    def class_names(self, domain: str) -> list[str]:
        return list(self._domain(domain)["class_names"])

    def counts(self, domain: str) -> dict[str, dict[str, int]]:
        """{split: {label_name: n}} for one domain."""
        return self._domain(domain)["counts"]

    def _domain(self, domain: str) -> dict:
        try:
            return self.manifest["domains"][domain]
        except KeyError:
            raise DatasetError(
                f"{self.root}: unknown domain {domain!r}; the dataset has {self.domains}"
            ) from None

    def files(self, domains: Iterable[str] | None = None, splits: Iterable[str] | None = None) -> list[Path]:
        """Parquet files holding the given domains (all when None) and splits (all when None); paths inside
        `filesystem` for a remote dataset (see `uris`)."""
        splits = list(SPLITS if splits is None else splits)
        for s in splits:
            if s not in SPLITS:
                raise DatasetError(f"unknown split {s!r}; expected one of {list(SPLITS)}")
        out = []
        for d in self.domains if domains is None else list(domains):
            files = self._domain(d)["files"]
            out += [self.root / f"{s}/{d}.parquet" for s in splits if f"{s}/{d}.parquet" in files]
        return out

    def read_table(
        self,
        domains: Iterable[str] | None = None,
        splits: Iterable[str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """All rows of the given domains and splits as one Arrow table (small datasets, tests, inspection)."""
        files = self.files(domains, splits)
        if not files:
            return SCHEMA.empty_table() if columns is None else SCHEMA.empty_table().select(list(columns))
        return pa.concat_tables(
            pq.read_table(str(f), columns=columns, schema=SCHEMA, filesystem=self.filesystem) for f in files
        )

    def uris(self, domains: Iterable[str] | None = None, splits: Iterable[str] | None = None) -> list[str]:
        """The files as strings a reader elsewhere (a Ray Data task on another node) can open: local paths,
        or `scheme://` URIs for a remote dataset."""
        files = self.files(domains, splits)
        if self.filesystem is None:
            return [str(f) for f in files]
        scheme = self.uri.split("://", 1)[0]
        return [f"{scheme}://{f}" if scheme != "file" else f"file://{f}" for f in files]

    def iter_batches(
        self,
        domains: Iterable[str] | None = None,
        splits: Iterable[str] | None = None,
        columns: Sequence[str] | None = None,
        batch_size: int = 64,
    ) -> Iterator[pa.RecordBatch]:
        """Stream record batches (bounded memory, for evaluation over large splits)."""
        for f in self.files(domains, splits):
            if self.filesystem is None:
                yield from pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=columns)
            else:
                with self.filesystem.open_input_file(str(f)) as fh:
                    yield from pq.ParquetFile(fh).iter_batches(batch_size=batch_size, columns=columns)


def as_dataset(data: PatchDataset | str | os.PathLike) -> PatchDataset:
    """An opened dataset as is; a path or URI opened (the edges of the API take either)."""
    return data if isinstance(data, PatchDataset) else open_dataset(data)


def open_dataset(path: str | os.PathLike, verify: bool = False) -> PatchDataset:
    """Open and validate a dataset directory or URI; `verify=True` also checks every file's SHA-256."""
    if is_uri(path):
        return _open_remote(str(path), verify)
    root = Path(path)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise DatasetError(
            f"{root}: not a pixelcam dataset ({MANIFEST} missing); create one with `pixelcam data synth` "
            f"or `pixelcam data ingest`"
        )
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{mpath}: not valid JSON ({exc})") from exc
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DatasetError(
            f"{mpath}: schema_version {version!r}, this pixelcam reads version {SCHEMA_VERSION}"
        )
    for domain, info in manifest.get("domains", {}).items():
        for rel, sha in info.get("files", {}).items():
            f = root / rel
            if not f.is_file():
                raise DatasetError(f"{f}: listed in {mpath} for domain {domain!r} but missing")
            try:
                schema = pq.read_schema(f)
            except Exception as exc:
                raise DatasetError(f"{f}: not a readable Parquet file ({exc})") from exc
            missing = [n for n in SCHEMA.names if n not in schema.names]
            if missing:
                raise DatasetError(
                    f"{f}: columns {missing} missing; expected the pixelcam schema {SCHEMA.names}"
                )
            if verify:
                from pixelcam.data.writer import file_sha256

                if file_sha256(f) != sha:
                    raise DatasetError(f"{f}: content changed since it was written (SHA-256 mismatch)")
    return PatchDataset(root=root, manifest=manifest)


def _open_remote(uri: str, verify: bool) -> PatchDataset:
    """A dataset behind a pyarrow filesystem URI: the manifest and every file's schema are checked there."""
    try:
        fs, base = pafs.FileSystem.from_uri(uri.rstrip("/"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise DatasetError(f"{uri}: cannot open this location through pyarrow ({exc})") from exc
    mpath = f"{base}/{MANIFEST}"
    try:
        with fs.open_input_stream(mpath) as fh:
            manifest = json.loads(fh.read().decode())
    except FileNotFoundError:
        raise DatasetError(f"{uri}: not a pixelcam dataset ({MANIFEST} missing)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{uri}/{MANIFEST}: cannot be read ({exc})") from exc
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise DatasetError(
            f"{uri}/{MANIFEST}: schema_version {manifest.get('schema_version')!r}, this pixelcam reads "
            f"version {SCHEMA_VERSION}"
        )
    for domain, info in manifest.get("domains", {}).items():
        for rel, sha in info.get("files", {}).items():
            where = f"{uri.rstrip('/')}/{rel}"
            try:
                with fs.open_input_file(f"{base}/{rel}") as fh:
                    schema = pq.read_schema(fh)
            except FileNotFoundError:
                raise DatasetError(
                    f"{where}: listed in the manifest for domain {domain!r} but missing"
                ) from None
            except Exception as exc:
                raise DatasetError(f"{where}: not a readable Parquet file ({exc})") from exc
            missing = [n for n in SCHEMA.names if n not in schema.names]
            if missing:
                raise DatasetError(f"{where}: columns {missing} missing; expected the pixelcam schema")
            if verify:
                import hashlib

                digest = hashlib.sha256()
                with fs.open_input_stream(f"{base}/{rel}") as fh:
                    while chunk := fh.read(1 << 20):
                        digest.update(chunk)
                if digest.hexdigest() != sha:
                    raise DatasetError(f"{where}: content changed since it was written (SHA-256 mismatch)")
    return PatchDataset(root=Path(base), manifest=manifest, filesystem=fs, uri=uri.rstrip("/"))
