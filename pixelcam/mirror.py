"""Study directories on object storage (`s3://`, `gs://`): a node-local stage mirrored to the bucket.

A study stored at `s3://bucket/prefix/NAME` works in its stage `<stage root>/s3/bucket/prefix/NAME` (the
stage root is `$PIXELCAM_STAGE`, default `<tempdir>/pixelcam-stage`: the same path on every node and on any
machine that resumes the study, since the study state records checkpoint paths). The mapping works both
ways, so any staged path knows its URI (`uri_of`) and vice versa (`stage_of`):

- whoever writes a file the study must not lose pushes it at once (`push`): the driver its state, spec and
  results, a trial each checkpoint it writes, and its run directory, pruned, when it ends; Tune and Ray
  Train write their own state to the URI themselves (their `storage_path`);
- whoever reads a staged file pulls it first (`pull`): files the stage lacks, or whose size differs, are
  downloaded (weights only when asked: choosing a trial needs its `selected.json`, not its model).

So trials on any node see each other's checkpoints without a shared disk, and a study killed with its
driver resumes from the bucket on a machine that never saw it. Local paths (not under the stage root) are
left alone by every function here: a study on a shared disk works as before.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from pixelcam.data.reader import is_uri
from pixelcam.errors import StorageError

STAGE_ENV = "PIXELCAM_STAGE"
WEIGHT_FILES = ("model.pt", "optim.pt")
_HIDDEN = ".*"  # temporaries of atomic writes (`pixelcam.io`, LocalSession, `pull`) are never mirrored

_pushed: dict[str, tuple[int, int]] = {}  # local file -> (size, mtime_ns) last pushed or pulled
_lock = threading.Lock()


def stage_root() -> Path:
    return Path(os.environ.get(STAGE_ENV) or Path(tempfile.gettempdir()) / "pixelcam-stage").resolve()


def stage_of(uri: str) -> Path:
    """The local stage of `uri` (`s3://bucket/a/b` -> `<stage root>/s3/bucket/a/b`)."""
    scheme, _, rest = uri.partition("://")
    parts = [p for p in PurePosixPath(rest).parts if p not in ("", "/")]
    if not scheme or not parts or any(p in (".", "..") for p in parts):
        raise StorageError(f"{uri}: expected scheme://bucket/path")
    return stage_root().joinpath(scheme, *parts)


def uri_of(path: str | os.PathLike) -> str | None:
    """The URI a staged path mirrors; None for a path outside the stage root."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(stage_root())
    except ValueError:
        return None
    if len(rel.parts) < 2:
        return None
    return f"{rel.parts[0]}://{'/'.join(rel.parts[1:])}"


def local_path(ref: str | os.PathLike) -> Path:
    """A path as given, or the stage of an object-store URI (`s3://bucket/runs/r` -> its staged path), so that
    commands taking a run, checkpoint or storage location accept either."""
    return stage_of(str(ref)) if is_uri(ref) else Path(ref)


def location(path: str | os.PathLike) -> str:
    """Where Ray (Tune's or Train's `storage_path`) should keep what belongs at `path`: its URI when
    staged, else the path."""
    return uri_of(path) or str(path)


def check_uri(uri: str) -> None:
    """StorageError (one line) unless `uri`'s filesystem opens and its bucket answers; reads nothing else."""
    import pyarrow.fs as pafs

    fs, path = _fs(uri)
    bucket = path.split("/", 1)[0]
    try:
        info = fs.get_file_info(bucket)
    except Exception as exc:  # pyarrow raises OSError with the server's message
        raise StorageError(f"{uri}: cannot open ({str(exc).strip().splitlines()[0]})") from None
    if info.type == pafs.FileType.NotFound:
        raise StorageError(f"{uri}: bucket {bucket!r} not found")


def remote_exists(path: str | os.PathLike) -> bool:
    """True when the staged `path` exists at its URI (a file, or a prefix with objects under it)."""
    import pyarrow.fs as pafs

    uri = uri_of(path)
    if uri is None:
        return Path(path).exists()
    fs, rpath = _fs(uri)
    return fs.get_file_info(rpath).type != pafs.FileType.NotFound


def push(path: str | os.PathLike, skip: Iterable[str] = (), delete: bool = False) -> int:
    """Upload the staged file or directory `path` to its URI: files new or changed since this process last
    pushed or pulled them. `skip`: name patterns (a matching directory is skipped whole). `delete`: also
    remove objects under the URI that no longer exist here (a run directory after pruning; only for a
    directory this process alone writes). Returns the number of files uploaded; 0 for an unstaged path."""
    uri = uri_of(path)
    if uri is None:
        return 0
    fs, rpath = _fs(uri)
    local = Path(path)
    sent, keep = 0, set()
    for f, rel in _local_files(local, tuple(skip)):
        key = rpath if rel == "." else f"{rpath}/{rel}"
        keep.add(key)
        stamp = _stamp(f)
        if stamp is None or _pushed.get(str(f)) == stamp:
            continue
        with open(f, "rb") as src, fs.open_output_stream(key) as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
        with _lock:
            _pushed[str(f)] = stamp
        sent += 1
    if delete and local.is_dir():
        _delete_gone(fs, rpath, local, keep, tuple(skip))
    return sent


def _delete_gone(fs, rpath: str, local: Path, keep: set[str], skip: tuple[str, ...]) -> None:  # noqa: ANN001
    """Remove what is under `rpath` but no longer under `local`: whole directories first (pyarrow leaves a
    marker object for a directory whose last file it deletes), then single files."""
    import pyarrow.fs as pafs

    entries = fs.get_file_info(pafs.FileSelector(rpath, recursive=True, allow_not_found=True))
    gone_dirs: list[str] = []
    for i in sorted(entries, key=lambda i: i.path):
        rel = i.path[len(rpath) :].lstrip("/")
        if any(_skipped(part, skip) for part in rel.split("/")) or any(
            i.path.startswith(d + "/") for d in gone_dirs
        ):
            continue
        if i.type == pafs.FileType.Directory and not (local / rel).is_dir():
            fs.delete_dir(i.path)
            gone_dirs.append(i.path)
        elif i.type == pafs.FileType.File and i.path not in keep:
            fs.delete_file(i.path)


def pull(path: str | os.PathLike, skip: Iterable[str] = (), refresh: bool = False) -> Path:
    """Download the staged file or directory `path` from its URI: objects the stage lacks or holds with
    another size (all of them with `refresh`). `skip`: name patterns, as for `push`. Returns `path`;
    an unstaged path is returned as is."""
    local = Path(path)
    uri = uri_of(local)
    if uri is None:
        return local
    fs, rpath = _fs(uri)
    for key, size in _remote_files(fs, rpath, tuple(skip)):
        rel = key[len(rpath) :].lstrip("/")
        dest = local / rel if rel else local
        if not refresh and dest.is_file() and dest.stat().st_size == size:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-pull")
        with fs.open_input_stream(key) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 22):
                out.write(chunk)
        os.replace(tmp, dest)
        stamp = _stamp(dest)
        with _lock:
            if stamp is not None:
                _pushed[str(dest)] = stamp  # pulled: identical to the remote copy, nothing to push
    return local


def _fs(uri: str):  # noqa: ANN202 - (pyarrow FileSystem, path inside it)
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:
        raise StorageError(f"{uri}: cannot open ({str(exc).strip().splitlines()[0]})") from None


def _skipped(name: str, skip: tuple[str, ...]) -> bool:
    return fnmatch.fnmatch(name, _HIDDEN) or any(fnmatch.fnmatch(name, s) for s in skip)


def _local_files(local: Path, skip: tuple[str, ...]) -> Iterator[tuple[Path, str]]:
    if local.is_file():
        yield local, "."
        return
    if not local.is_dir():
        return
    for root, dirs, files in os.walk(local):
        dirs[:] = sorted(d for d in dirs if not _skipped(d, skip))
        for name in sorted(files):
            if not _skipped(name, skip):
                f = Path(root) / name
                yield f, f.relative_to(local).as_posix()


def _remote_files(fs, rpath: str, skip: tuple[str, ...]) -> Iterator[tuple[str, int]]:  # noqa: ANN001
    import pyarrow.fs as pafs

    info = fs.get_file_info(rpath)
    if info.type == pafs.FileType.File:
        yield rpath, info.size
        return
    if info.type == pafs.FileType.NotFound:
        return
    for i in fs.get_file_info(pafs.FileSelector(rpath, recursive=True, allow_not_found=True)):
        if i.type != pafs.FileType.File:
            continue
        rel = i.path[len(rpath) :].lstrip("/").split("/")
        if not any(_skipped(part, skip) for part in rel):
            yield i.path, i.size


def _stamp(f: Path) -> tuple[int, int] | None:
    try:
        st = f.stat()
    except FileNotFoundError:  # removed meanwhile (a pruned checkpoint)
        return None
    return st.st_size, st.st_mtime_ns
