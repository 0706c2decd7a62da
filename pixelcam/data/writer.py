"""Atomic, streaming dataset writer: rows go to a temporary sibling directory, renamed into place on success.

A failed write (an exception inside the `with` block, or a validation error at the end) removes the temporary
directory, so a dataset directory is either complete (it has a manifest) or absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from pixelcam.data.errors import DatasetError
from pixelcam.data.schema import MANIFEST, SCHEMA_VERSION, SPLITS, Patch, schema_with_metadata
from pixelcam.storage.atomic import remove_stale_temporaries, replace_with, temporary_prefix
from pixelcam.storage.lock import exclusive

_FLUSH_ROWS = 128


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class DatasetWriter:
    """Write patches of one or more domains into `out` as `<split>/<domain>.parquet` plus `manifest.json`.

    Usage: `with DatasetWriter(out) as w: w.add_domain("glas", ["benign", "malignant"]); w.write(patch)`.
    `overwrite=True` replaces an existing dataset only once the new one is complete.
    """

    def __init__(
        self, out: str | os.PathLike, overwrite: bool = False, required_splits: tuple[str, ...] = SPLITS
    ):
        self.out = Path(out)
        self.overwrite = overwrite
        self.required_splits = required_splits
        self._tmp: Path | None = None
        self._class_names: dict[str, list[str]] = {}
        self._writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self._buffers: dict[tuple[str, str], list[Patch]] = defaultdict(list)
        self._ids: dict[str, str] = {}
        self._counts: dict[str, dict[str, dict[str, int]]] = {}
        self._masked: dict[str, dict[str, int]] = {}
        self._roi: dict[str, list[str]] = {}
        self._origin: dict[str, str] = {}
        self._content: dict[str, list[str]] = defaultdict(list)  # per domain: one digest per row

    def __enter__(self) -> DatasetWriter:
        with contextlib.ExitStack() as stack:
            stack.enter_context(exclusive(self.out, "dataset"))  # one writer: a second one fails here
            self._open()
            self._held = stack.pop_all()  # released in __exit__
        return self

    def _open(self) -> None:
        remove_stale_temporaries(self.out)  # left by a killed earlier write of the same dataset
        check_replaceable(self.out, self.overwrite)
        self._existed = _identity(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(self.out), dir=self.out.parent))
        self._tmp.chmod(0o755)  # mkdtemp makes 0700; a dataset is shared like any directory

    def add_domain(
        self,
        domain: str,
        class_names: list[str],
        roi_classes: list[str] | None = None,
        origin: str | None = None,
    ) -> None:
        """Declare a domain, its class names (label id = index in `class_names`) and the classes whose images
        carry an ROI (default: every class but the first; GlaS-like domains: all of them); `origin`, recorded
        in the manifest, says what produced it (a generator's version and settings)."""
        if domain in self._class_names:
            raise DatasetError(f"domain {domain!r} added twice")
        if not domain or "/" in domain or domain.startswith("."):
            raise DatasetError(f"domain name {domain!r} is not a valid file name")
        self._class_names[domain] = list(class_names)
        roi = list(class_names[1:]) if roi_classes is None else list(roi_classes)
        unknown = sorted(set(roi) - set(class_names))
        if unknown:
            raise DatasetError(
                f"domain {domain!r}: ROI classes {unknown} are not among its classes {class_names}"
            )
        self._roi[domain] = roi
        if origin is not None:
            self._origin[domain] = origin
        self._counts[domain] = {s: {c: 0 for c in class_names} for s in SPLITS}
        self._masked[domain] = {s: 0 for s in SPLITS}

    def write(self, patch: Patch) -> None:
        """Validate and buffer one row (flushed to Parquet in row groups)."""
        assert self._tmp is not None, "use DatasetWriter as a context manager"
        names = self._class_names.get(patch.domain)
        if names is None:
            raise DatasetError(
                f"{patch.source_path}: domain {patch.domain!r} was not declared with add_domain"
            )
        if patch.split not in SPLITS:
            raise DatasetError(
                f"{patch.source_path}: unknown split {patch.split!r}; expected one of {list(SPLITS)}"
            )
        if not 0 <= patch.label < len(names) or names[patch.label] != patch.label_name:
            raise DatasetError(
                f"{patch.source_path}: label {patch.label} / {patch.label_name!r} does not match the classes "
                f"{names} of domain {patch.domain!r}"
            )
        previous = self._ids.get(patch.image_id)
        if previous is not None:
            raise DatasetError(
                f"duplicate image_id {patch.image_id!r}: from {previous} and from {patch.source_path}"
            )
        if patch.in_valcl and patch.split != "valpx":
            raise DatasetError(f"{patch.source_path}: only a valpx image can also belong to valcl")
        self._ids[patch.image_id] = patch.source_path
        self._counts[patch.domain][patch.split][patch.label_name] += 1
        if patch.in_valcl:  # the protocol's valcl lists its valpx images too
            self._counts[patch.domain]["valcl"][patch.label_name] += 1
        self._content[patch.domain].append(patch.digest or row_digest(patch))
        self._masked[patch.domain][patch.split] += patch.mask is not None
        key = (patch.split, patch.domain)
        self._buffers[key].append(patch)
        if len(self._buffers[key]) >= _FLUSH_ROWS:
            self._flush(key)

    def _flush(self, key: tuple[str, str]) -> None:
        rows = self._buffers.pop(key, [])
        if not rows:
            return
        split, domain = key
        schema = schema_with_metadata(domain, self._class_names[domain])
        writer = self._writers.get(key)
        if writer is None:
            assert self._tmp is not None
            (self._tmp / split).mkdir(exist_ok=True)
            writer = pq.ParquetWriter(
                self._tmp / split / f"{domain}.parquet",
                schema,
                # PNG bytes are deflate-compressed already: zstd over them costs time and saves nothing
                compression={f.name: "none" if f.name in ("image", "mask") else "zstd" for f in schema},
                use_dictionary=["domain", "split", "label_name"],
                write_statistics=["label"],
            )
            self._writers[key] = writer
        cols = {f.name: [getattr(r, f.name) for r in rows] for f in schema}
        writer.write_table(pa.Table.from_pydict(cols, schema=schema), row_group_size=len(rows))

    def _finish(self) -> None:
        for key in list(self._buffers):
            self._flush(key)
        for w in self._writers.values():
            w.close()
        self._writers.clear()
        self._check_splits()
        assert self._tmp is not None
        domains = {domain: self._domain_manifest(domain) for domain in self._class_names}
        manifest = {"schema_version": SCHEMA_VERSION, "hash": manifest_hash(domains), "domains": domains}
        (self._tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))

    def _check_splits(self) -> None:
        """Every required split has images, and valpx and test have pixel-level masks."""
        if not self._class_names:
            raise DatasetError(f"{self.out}: no domain was written")
        for domain, per_split in self._counts.items():
            for split in self.required_splits:
                if sum(per_split[split].values()) == 0:
                    raise DatasetError(
                        f"domain {domain!r}: split {split!r} is empty; every split needs images"
                    )
            for split in ("valpx", "test"):
                if split in self.required_splits and self._masked[domain][split] == 0:
                    raise DatasetError(f"domain {domain!r}: split {split!r} has no pixel-level masks")

    def _domain_manifest(self, domain: str) -> dict:
        assert self._tmp is not None
        files = {}
        for split in SPLITS:
            rel = f"{split}/{domain}.parquet"
            if (self._tmp / rel).exists():
                files[rel] = file_sha256(self._tmp / rel)
        origin = {"origin": self._origin[domain]} if domain in self._origin else {}
        return origin | {
            "class_names": self._class_names[domain],
            "roi_classes": self._roi[domain],
            "content_sha256": content_digest(self._content[domain]),
            "counts": self._counts[domain],
            "masked": self._masked[domain],
            "files": files,
            "bytes": {rel: (self._tmp / rel).stat().st_size for rel in files},  # checked by every open
        }

    def _install(self) -> None:
        assert self._tmp is not None
        if _identity(self.out) != self._existed:  # made or replaced by someone else meanwhile: never removed
            raise DatasetError(
                f"{self.out}: appeared or changed while the dataset was written; it is left as it is and "
                "nothing was written (choose another --out)"
            )
        replace_with(self._tmp, self.out)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self._finish()
                self._install()
        finally:
            for w in self._writers.values():
                w.close()
            if self._tmp is not None and self._tmp.exists():
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._held.close()


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what is at `path`, None when nothing is."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def check_replaceable(out: Path, overwrite: bool) -> None:
    """A dataset may be written at `out` when nothing is there, or (with `overwrite`) a pixelcam dataset is:
    `--overwrite` never replaces a file or a directory that is not a dataset."""
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        return
    if not overwrite:
        raise DatasetError(f"{out}: already exists; pass --overwrite to replace it")
    if out.is_symlink() or not out.is_dir() or not (out / MANIFEST).is_file():
        what = "a file" if out.is_file() else "a directory that is not a pixelcam dataset (no manifest.json)"
        raise DatasetError(f"{out}: is {what}; --overwrite only replaces a dataset, choose another --out")


def row_digest(patch: Patch) -> str:
    """What a row contributes to the content hash: its id, split, label, valcl membership, image and mask
    bytes; not where it was built or read from."""
    h = hashlib.sha256()
    for part in (patch.image_id, patch.split, str(patch.label), str(patch.in_valcl)):
        h.update(part.encode() + b"\0")
    h.update(hashlib.sha256(patch.image).digest())
    h.update(hashlib.sha256(patch.mask).digest() if patch.mask is not None else b"no mask")
    return h.hexdigest()


def content_digest(row_digests: list[str]) -> str:
    """A domain's content digest: its rows' digests in image-id order (independent of write order)."""
    return hashlib.sha256("\n".join(sorted(row_digests)).encode()).hexdigest()


def manifest_hash(domains: dict) -> str:
    """The dataset hash, from content only: every domain's name, classes, ROI classes and content digest
    (datasets written before content digests: the file digests)."""
    digest = hashlib.sha256()
    for d in sorted(domains):
        info = domains[d]
        if "content_sha256" in info:
            head = json.dumps([d, info["class_names"], info.get("roi_classes")])
            digest.update(f"{head}:{info['content_sha256']}\n".encode())
        else:
            for rel, sha in sorted(info["files"].items()):
                digest.update(f"{rel}:{sha}\n".encode())
    return digest.hexdigest()
