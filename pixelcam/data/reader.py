"""Open a dataset directory written by `DatasetWriter` and read rows by domain and split."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from pixelcam.data.errors import DatasetError
from pixelcam.data.schema import MANIFEST, OPTIONAL_COLUMNS, READABLE_VERSIONS, SCHEMA, SPLITS
from pixelcam.errors import StorageError
from pixelcam.storage import Location, is_uri

__all__ = ["PatchDataset", "as_dataset", "is_uri", "open_dataset", "verify_manifest_hash"]


@dataclass(frozen=True)
class PatchDataset:
    """A validated dataset directory: its manifest and the Parquet files per (split, domain).

    `root` is a `Location`: a local directory, or a URI (`s3://bucket/ds`, `gs://...`, `file:///...`) read
    through its pyarrow filesystem (credentials from the usual environment variables or instance roles).
    """

    root: Location
    manifest: dict

    @property
    def location(self) -> str:
        """Where the dataset is (a local path or its URI), for messages and provenance."""
        return self.root.uri

    @property
    def hash(self) -> str:
        """Content hash of all Parquet files (recorded with every run that reads this dataset)."""
        return self.manifest["hash"]

    @property
    def domains(self) -> list[str]:
        return sorted(self.manifest["domains"])

    def class_names(self, domain: str) -> list[str]:
        return list(self._domain(domain)["class_names"])

    def roi_classes(self, domain: str) -> list[str]:
        """The classes whose images carry an ROI (GlaS: every class; CAMELYON16: tumour only). Datasets
        written before this was recorded: every class but the first."""
        info = self._domain(domain)
        return list(info.get("roi_classes", info["class_names"][1:]))

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

    def files(
        self, domains: Iterable[str] | None = None, splits: Iterable[str] | None = None
    ) -> list[Location]:
        """Parquet files holding the given domains (all when None) and splits (all when None)."""
        return [self.root / rel for _, rel in self._stored(domains, splits)]

    def stored_bytes(self, domains: Iterable[str] | None = None, splits: Iterable[str] | None = None) -> int:
        """Bytes of the Parquet files holding these domains and splits, from the manifest (a file's size is
        asked of its filesystem only for datasets written before sizes were recorded)."""
        total = 0
        for domain, rel in self._stored(domains, splits):
            size = self._domain(domain).get("bytes", {}).get(rel)
            total += size if size is not None else (self.root / rel).size()
        return total

    def _stored(self, domains: Iterable[str] | None, splits: Iterable[str] | None) -> list[tuple[str, str]]:
        """(domain, `split/domain.parquet`) of each stored file of these domains and splits."""
        splits = list(SPLITS if splits is None else splits)
        for s in splits:
            if s not in SPLITS:
                raise DatasetError(f"unknown split {s!r}; expected one of {list(SPLITS)}")
        out = []
        for d in self.domains if domains is None else list(domains):
            files = self._domain(d)["files"]
            out += [(d, f"{s}/{d}.parquet") for s in splits if f"{s}/{d}.parquet" in files]
        return out

    def read_table(
        self,
        domains: Iterable[str] | None = None,
        splits: Iterable[str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """The stored rows of the given domains and splits as one Arrow table (each image once: a valpx image
        that is also in valcl is in valpx only; small datasets, tests, inspection)."""
        files = self.files(domains, splits)
        empty = SCHEMA.empty_table()
        if not files:
            return empty if columns is None else empty.select(list(columns))
        return pa.concat_tables(self._read(f, columns) for f in files)

    def _read(self, f: Location, columns: Sequence[str] | None) -> pa.Table:
        t = pq.read_table(f.path, filesystem=f.fs)
        for name in OPTIONAL_COLUMNS:  # version-1 files
            if name not in t.column_names:
                t = t.append_column(SCHEMA.field(name), pa.array([False] * t.num_rows, pa.bool_()))
        return t.select(list(columns) if columns is not None else SCHEMA.names).cast(
            SCHEMA if columns is None else pa.schema([SCHEMA.field(c) for c in columns])
        )

    def uris(self, domains: Iterable[str] | None = None, splits: Iterable[str] | None = None) -> list[str]:
        """The files as strings a reader elsewhere (a Ray Data task on another node) can open: local paths,
        or `scheme://` URIs for a remote dataset."""
        return [f.uri for f in self.files(domains, splits)]

    def iter_batches(
        self,
        domains: Iterable[str] | None = None,
        splits: Iterable[str] | None = None,
        columns: Sequence[str] | None = None,
        batch_size: int = 64,
    ) -> Iterator[pa.RecordBatch]:
        """Stream record batches (bounded memory, for evaluation over large splits). `valcl` follows the
        protocol: its own rows, then the valpx rows that also belong to valcl (B-CL uses all of valcl)."""
        splits = list(SPLITS if splits is None else splits)
        for d in self.domains if domains is None else list(domains):
            for s in splits:
                yield from self._batches(self.files([d], [s]), columns, batch_size)
                if s == "valcl" and "valpx" not in splits:
                    yield from self._batches(
                        self.files([d], ["valpx"]), columns, batch_size, only_in_valcl=True
                    )

    def _batches(
        self,
        files: list[Location],
        columns: Sequence[str] | None,
        batch_size: int,
        only_in_valcl: bool = False,
    ) -> Iterator[pa.RecordBatch]:
        for f in files:
            with f.open_input_file() as fh:
                yield from _file_batches(pq.ParquetFile(fh), columns, batch_size, only_in_valcl)


def _file_batches(
    pf: pq.ParquetFile, columns: Sequence[str] | None, batch_size: int, only_in_valcl: bool
) -> Iterator[pa.RecordBatch]:
    if not only_in_valcl:
        yield from pf.iter_batches(batch_size=batch_size, columns=columns)
        return
    if "in_valcl" not in pf.schema_arrow.names:  # version-1 file: valpx was disjoint from valcl
        return
    cols = None if columns is None else list(dict.fromkeys([*columns, "in_valcl"]))
    for rb in pf.iter_batches(batch_size=batch_size, columns=cols):
        rb = rb.filter(rb.column("in_valcl"))
        if rb.num_rows:
            yield rb if columns is None else rb.select(list(columns))


def _check_manifest(manifest: object, where: str) -> None:
    """The manifest's shape, so that a hand-edited or foreign file fails with its name, not a KeyError."""
    if not isinstance(manifest, dict):
        raise DatasetError(f"{where}: expected a JSON object with schema_version, hash and domains")
    domains = manifest.get("domains")
    if not isinstance(domains, dict) or not isinstance(manifest.get("hash"), str):
        raise DatasetError(f"{where}: expected 'hash' (text) and 'domains' (an object of domains)")
    for name, info in domains.items():
        need = ("class_names", "counts", "files")
        if not isinstance(info, dict) or any(k not in info for k in need):
            raise DatasetError(f"{where}: domains.{name}: expected an object with {list(need)}")


def verify_manifest_hash(ds: PatchDataset) -> None:
    """DatasetError when the manifest's top-level hash (the one logged with every run) does not match its
    domains' recorded content: a hand-edited or swapped manifest."""
    from pixelcam.data.writer import manifest_hash

    expected = manifest_hash(ds.manifest["domains"])
    if ds.manifest["hash"] != expected:
        raise DatasetError(
            f"{ds.location}/{MANIFEST}: hash {ds.manifest['hash'][:12]} does not match the recorded content "
            f"({expected[:12]}): the manifest was changed after the dataset was written"
        )


def as_dataset(data: PatchDataset | str | os.PathLike) -> PatchDataset:
    """An opened dataset as is; a path or URI opened (the edges of the API take either)."""
    return data if isinstance(data, PatchDataset) else open_dataset(data)


def open_dataset(path: str | os.PathLike | Location, verify: bool = False) -> PatchDataset:
    """Open and validate a dataset directory or URI: its manifest and every listed file's schema (`verify`:
    also every file's SHA-256 and the manifest's own hash)."""
    try:
        root = Location(path)
        manifest = _read_manifest(root)
    except StorageError as exc:  # an unknown scheme, an unreachable store, a missing bucket
        raise DatasetError(str(exc)) from None
    for domain, info in manifest["domains"].items():
        for rel, sha in info["files"].items():
            rows = _expected_rows(info, rel)
            _check_file(root / rel, domain, sha if verify else None, rows)
            _check_size(root / rel, info.get("bytes", {}).get(rel))  # datasets before: no sizes
    ds = PatchDataset(root=root, manifest=manifest)
    if verify:
        verify_manifest_hash(ds)
        check_no_leaks(ds)
    return ds


def _expected_rows(info: dict, rel: str) -> tuple[int, int] | None:
    """(fewest, most) images the file of a split (`<split>/<domain>.parquet`) may hold by the manifest's
    counts: its count exactly, except valcl, whose count includes the valpx images it shares (they are
    stored once, in the valpx file)."""
    counts = {s: sum(c.values()) for s, c in info["counts"].items() if isinstance(c, dict)}
    split = rel.split("/", 1)[0]
    if split not in counts:
        return None
    if split == "valcl":
        return max(0, counts[split] - counts.get("valpx", 0)), counts[split]
    return counts[split], counts[split]


def check_no_leaks(ds: PatchDataset) -> None:
    """DatasetError naming both files when an image id appears in two splits of a domain (a test image
    copied into train, say)."""
    for domain in ds.domains:
        seen: dict[str, str] = {}
        for f in ds.files([domain], list(SPLITS)):
            split = f.parent.name
            ids = pq.read_table(f.path, columns=["image_id"], filesystem=f.fs).column("image_id").to_pylist()
            for image_id in ids:
                other = seen.setdefault(image_id, split)
                if other != split:
                    raise DatasetError(
                        f"{f}: image {image_id!r} is also in split {other!r} of domain {domain!r}: "
                        "one image in two splits leaks between training and evaluation"
                    )


def _read_manifest(root: Location) -> dict:
    """The manifest of the dataset at `root`, its shape and schema version checked."""
    mpath = root / MANIFEST
    if not root.exists():
        raise DatasetError(f"{root}: no such dataset directory")
    if not mpath.is_file():
        raise DatasetError(
            f"{root}: not a pixelcam dataset ({MANIFEST} missing); create one with `pixelcam data synth` "
            f"or `pixelcam data ingest`"
        )
    try:
        text = mpath.read_text()
    except (OSError, StorageError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{mpath}: cannot be read ({exc})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{mpath}: not valid JSON ({exc})") from exc
    _check_manifest(manifest, str(mpath))
    version = manifest.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise DatasetError(
            f"{mpath}: schema_version {version!r}, this pixelcam reads versions {list(READABLE_VERSIONS)}"
        )
    return manifest


def _check_size(f: Location, size: int | None) -> None:
    """A listed file has the byte size the manifest records (one stat, at every open: a file rewritten with
    as many rows, which its footer cannot tell, is caught without reading it)."""
    if size is None:
        return
    info = f.fs.get_file_info(f.path)  # exists: `_check_file` read its footer
    if info.size != size:
        raise DatasetError(
            f"{f}: {info.size} bytes, the manifest records {size}: truncated or changed after the dataset "
            "was written; write the dataset again"
        )


def _check_file(f: Location, domain: str, sha: str | None, rows: tuple[int, int] | None = None) -> None:
    """A listed file exists, has the pixelcam schema and the manifest's row count (read from its footer:
    cheap, so every open checks it) and, when `sha` is given, that content hash."""
    try:
        meta = pq.read_metadata(f.path, filesystem=f.fs)
        schema = meta.schema.to_arrow_schema()
    except FileNotFoundError:
        raise DatasetError(f"{f}: listed in the manifest for domain {domain!r} but missing") from None
    except (OSError, pa.ArrowException) as exc:  # ArrowInvalid: not Parquet; OSError: unreadable
        raise DatasetError(f"{f}: not a readable Parquet file ({exc})") from exc
    missing = [n for n in SCHEMA.names if n not in schema.names and n not in OPTIONAL_COLUMNS]
    if missing:
        raise DatasetError(f"{f}: columns {missing} missing; expected the pixelcam schema {SCHEMA.names}")
    if rows is not None and not rows[0] <= meta.num_rows <= rows[1]:
        listed = str(rows[1]) if rows[0] == rows[1] else f"{rows[0]}-{rows[1]}"
        raise DatasetError(
            f"{f}: {meta.num_rows} images, the manifest lists {listed} for it: the file was replaced or "
            "changed after the dataset was written (swapped splits?); write the dataset again"
        )
    if sha is not None and _sha256(f) != sha:
        raise DatasetError(f"{f}: content changed since it was written (SHA-256 mismatch)")


def _sha256(f: Location) -> str:
    digest = hashlib.sha256()
    for chunk in f.iter_chunks():
        digest.update(chunk)
    return digest.hexdigest()
