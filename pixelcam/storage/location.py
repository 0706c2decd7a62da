"""Where pixelcam keeps what it writes: a `Location` is a file or directory on a pyarrow filesystem, opened
from a local path or a URI (`s3://bucket/prefix`, `gs://...`, `hdfs://...`, `file:///...`) and handed down.

Datasets, training runs, their checkpoints and studies are read and written through it, so a run or a study
on a bucket takes the same code path as one on a local disk, and Ray Train and Ray Tune keep their own
state at the same place (`Location.uri` is their `storage_path`). Nothing above this module syncs copies.

Writes are atomic for readers: a file appears whole (local: a temporary sibling renamed into place; object
stores: one PUT), and a directory written with `put_dir` appears whole on a local disk (temporary sibling,
then rename) or, on an object store, with the files named `last` written after every other one, so a reader
that waits for those (a checkpoint's `meta.json`) never sees a partial directory.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.fs as pafs

from pixelcam.errors import StorageError
from pixelcam.storage.atomic import atomic_dir, atomic_file, write_bytes_atomic

# Streamed copies move 4 MiB per read: one GET each from an object store (pyarrow's input *streams* read
# 256 KiB per request, 84 GETs for a 22 MB checkpoint against 1 plus a HEAD with a random-access file)
_CHUNK = 1 << 22


def is_uri(ref: str | os.PathLike) -> bool:
    """True for `scheme://...` locations (s3://, gs://, hdfs://, file://): pyarrow filesystems read them."""
    return "://" in str(ref)


@functools.lru_cache(maxsize=64)
def _filesystem(root: str, endpoint: str | None) -> pafs.FileSystem:
    """One filesystem object per bucket (and endpoint): opening an S3 one asks the server for its region."""
    del endpoint  # part of the cache key only: a test's own S3 server is another filesystem
    try:
        return pafs.FileSystem.from_uri(root)[0]
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) or OSError
        raise StorageError(f"{root}: cannot open ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Location:
    """A file or directory, local or on an object store. `/` joins; `uri` is the string form (a local
    absolute path, or `scheme://bucket/key`) that `Location(uri)` opens again, also in another process
    (pickled as that string)."""

    __slots__ = ("uri", "_scheme", "_path")

    def __init__(self, ref: str | os.PathLike | Location) -> None:
        text = ref.uri if isinstance(ref, Location) else os.fspath(ref)
        if is_uri(text):
            scheme, _, rest = text.partition("://")
            parts = [p for p in rest.split("/") if p]
            if not scheme or not parts or any(p in (".", "..") for p in parts):
                raise StorageError(f"{text}: expected scheme://bucket/path")
            self._scheme = scheme.lower()
            self._path = "/".join(parts) if self._scheme != "file" else "/" + "/".join(parts)
            self.uri = f"{self._scheme}://{self._path}" if self._scheme != "file" else f"file://{self._path}"
        else:
            self._scheme = ""
            self._path = os.path.abspath(text)
            self.uri = self._path

    # -- identity ------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    def __str__(self) -> str:
        return self.uri

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __fspath__(self) -> str:
        """The local path, so a local Location goes wherever a path does; StorageError for a remote one."""
        return str(self.local)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Location, (self.uri,))

    def __truediv__(self, name: str | os.PathLike) -> Location:
        rel = PurePosixPath(os.fspath(name))
        if rel.is_absolute() or ".." in rel.parts:
            raise StorageError(f"{self.uri}: {name!s} leads outside it")
        return self._with_path(f"{self._path.rstrip('/')}/{rel.as_posix()}" if rel.parts else self._path)

    def joinpath(self, *names: str) -> Location:
        out = self
        for n in names:
            out = out / n
        return out

    def _with_path(self, path: str) -> Location:
        if not self._scheme:
            return Location(path)
        if self._scheme == "file":
            return Location(f"file://{path}")
        return Location(f"{self._scheme}://{path}")

    @property
    def name(self) -> str:
        return PurePosixPath(self._path).name

    @property
    def parent(self) -> Location:
        parent = str(PurePosixPath(self._path).parent)
        if self.is_remote and "/" not in self._path.strip("/"):
            return self  # a bucket is its own parent
        return self._with_path(parent)

    @property
    def is_remote(self) -> bool:
        """On an object store or another remote filesystem (anything but a local path or file://)."""
        return self._scheme not in ("", "file")

    @property
    def local(self) -> Path:
        """The local path (StorageError for a remote location: read or copy it instead)."""
        if self.is_remote:
            raise StorageError(f"{self.uri}: not a local path")
        return Path(self._path)

    @property
    def fs(self) -> pafs.FileSystem:
        if not self._scheme or self._scheme == "file":
            return _local_fs()
        bucket = self._path.split("/", 1)[0]
        try:
            return _filesystem(f"{self._scheme}://{bucket}", os.environ.get("AWS_ENDPOINT_URL"))
        except StorageError as exc:
            raise StorageError(f"{self.uri}: {str(exc).split(': ', 1)[1]}") from None

    @property
    def path(self) -> str:
        """The path inside `fs`."""
        return self._path

    def relative_to(self, other: Location) -> str:
        """This location's path below `other` (StorageError when it is not below it)."""
        base = other.uri.rstrip("/") + "/"
        if not self.uri.startswith(base):
            raise StorageError(f"{self.uri} is not inside {other.uri}")
        return self.uri[len(base) :]

    # -- queries -------------------------------------------------------------------------------------
    def _info(self) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(self._path)
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot be reached ({_first_line(exc)})") from None

    def exists(self) -> bool:
        return self._info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._info().type == pafs.FileType.Directory

    def size(self) -> int:
        return int(self._info().size or 0)

    def iterdir(self) -> list[Location]:
        """The entries directly inside this directory, sorted by name (none when it does not exist)."""
        sel = pafs.FileSelector(self._path, recursive=False, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(sel)
        except (OSError, ValueError):  # a file, not a directory
            return []
        return sorted((self._with_path(i.path) for i in infos), key=lambda loc: loc.name)

    def glob(self, pattern: str) -> list[Location]:
        """The entries directly inside this directory whose name matches `pattern` (fnmatch), sorted."""
        return [c for c in self.iterdir() if fnmatch.fnmatch(c.name, pattern)]

    def walk_files(self) -> Iterator[tuple[Location, str]]:
        """(file, path relative to this directory) of every file below it; hidden names (temporaries) left
        out."""
        sel = pafs.FileSelector(self._path, recursive=True, allow_not_found=True)
        for info in self.fs.get_file_info(sel):
            rel = info.path[len(self._path.rstrip("/")) + 1 :]
            if info.type == pafs.FileType.File and not any(p.startswith(".") for p in rel.split("/")):
                yield self._with_path(info.path), rel

    def check(self) -> None:
        """StorageError (one line) unless the filesystem opens and, on an object store, the bucket answers."""
        if not self.is_remote:
            return
        self.fs  # noqa: B018 - opens the filesystem: an unknown scheme is named with this location
        bucket = self._with_path(self._path.split("/", 1)[0])
        if not bucket.exists():
            raise StorageError(f"{self.uri}: bucket {bucket.name!r} not found")

    # -- reading -------------------------------------------------------------------------------------
    def read_bytes(self) -> bytes:
        try:  # a random-access file knows its size: one ranged GET (a stream reads 256 KiB per GET on S3)
            with self.fs.open_input_file(self._path) as fh:
                return fh.read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot be read ({_first_line(exc)})") from None

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def read_json(self) -> Any:
        return json.loads(self.read_text())

    def open_input_file(self) -> Any:
        """A seekable binary file (Parquet readers)."""
        return self.fs.open_input_file(self._path)

    def iter_chunks(self) -> Iterator[bytes]:
        """The file's bytes in `_CHUNK`-sized pieces (one GET each on an object store), for streamed copies
        and hashes of files too large to hold at once."""
        with self.open_input_file() as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk

    # -- writing -------------------------------------------------------------------------------------
    def mkdir(self) -> Location:
        """Create this directory with its parents (object stores have none to create). Returns self."""
        if not self.is_remote:
            self.local.mkdir(parents=True, exist_ok=True)
        return self

    def write_bytes(self, data: bytes) -> None:
        """Write atomically: readers see the old content or the new, never part of it."""
        if not self.is_remote:
            write_bytes_atomic(self.local, data)
            return
        try:
            with self.fs.open_output_stream(self._path) as out:
                out.write(data)
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot be written ({_first_line(exc)})") from None

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def write_json(self, data: Any) -> None:
        """Indented, key-sorted JSON, atomically."""
        self.write_text(json.dumps(data, indent=2, sort_keys=True))

    def unlink(self) -> None:
        if self.is_file():
            self.fs.delete_file(self._path)

    def rmtree(self) -> None:
        """Remove this directory and everything below it (nothing when it does not exist)."""
        if self._info().type == pafs.FileType.Directory:
            self.fs.delete_dir(self._path)

    def put_dir(self, source: str | os.PathLike, last: Iterable[str] = ()) -> None:
        """Replace this directory with a copy of the local directory `source`: on a local disk through a
        temporary sibling renamed into place; on an object store file by file, the names in `last` after
        every other one (the file whose presence says the directory is complete)."""
        src = Path(source)
        if not self.is_remote:
            with atomic_dir(self.local) as tmp:
                shutil.copytree(src, tmp, dirs_exist_ok=True)
            return
        last = tuple(last)
        self.rmtree()
        files = sorted(p for p in src.rglob("*") if p.is_file())
        for f in sorted(files, key=lambda p: p.name in last):
            (self / f.relative_to(src).as_posix()).put_file(f)

    def put_file(self, source: str | os.PathLike) -> None:
        """Copy the local file `source` here (streamed; atomic like `write_bytes`)."""
        if not self.is_remote:
            with atomic_file(self.local) as tmp:
                shutil.copyfile(source, tmp)
            return
        with open(source, "rb") as src, self.fs.open_output_stream(self._path) as out:
            while chunk := src.read(_CHUNK):
                out.write(chunk)

    def get_dir(self, dest: str | os.PathLike, skip: Iterable[str] = ()) -> Path:
        """Copy this directory's files (but those whose name matches a pattern of `skip`) into the local
        directory `dest`; returns it."""
        out = Path(dest)
        skip = tuple(skip)
        for f, rel in self.walk_files():
            if any(fnmatch.fnmatch(part, s) for part in rel.split("/") for s in skip):
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                for chunk in f.iter_chunks():
                    fh.write(chunk)
        return out


@functools.lru_cache(maxsize=1)
def _local_fs() -> pafs.LocalFileSystem:
    return pafs.LocalFileSystem()
