"""Atomic local output: a file or a directory is written under a temporary sibling name owned by this process
(`.NAME.tmp-PID-...`), then renamed into place, so a reader (or a later run after a crash) never sees it
half-written. Temporaries of a process that died (SIGKILL, power cut) are removed by the next write of the
same target. Files and directories get the modes the user's umask gives new ones (0644 / 0755 by default),
not the 0600 / 0700 of `mkstemp` / `mkdtemp`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary sibling and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str | bytes) -> None:
    """Write `text` (str or bytes) to `path` atomically."""
    write_bytes_atomic(path, text.encode() if isinstance(text, str) else text)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as indented, key-sorted JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling path of `target` for a writer that needs a file name (a TIFF or PNG
    writer); it takes `target`'s place when the block ends without an exception, else it is removed."""
    target = Path(target)
    remove_stale_temporaries(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(temporary_prefix(target) + "write" + target.suffix)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(target: Path, keep_old: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory of `target`; when the block ends without an exception it takes
    `target`'s place (an existing `target` is removed, or with `keep_old` renamed to a `.old` temporary
    the caller removes), else it is removed. The one directory swap of the package."""
    from pixelcam.storage.lock import exclusive

    target = Path(target)
    with exclusive(target, "directory"):  # one writer: a second one fails at once, naming the first
        remove_stale_temporaries(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(target), dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
            replace_with(tmp, target, keep_old)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def replace_with(tmp: Path, target: Path, keep_old: bool = False) -> Path | None:
    """Rename the finished temporary `tmp` to `target`; an existing `target` is first renamed aside and then
    removed (returned instead with `keep_old`). Readers see the old `target` or the new one, never a mix."""
    tmp, target = Path(tmp), Path(target)
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(temporary_prefix(target) + "old")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None and not keep_old:
        _remove(old)
        return None
    return old


def temporary_prefix(target: Path) -> str:
    """Name prefix of a temporary sibling of `target` owned by this process (`.NAME.tmp-PID-`)."""
    return f".{Path(target).name}.tmp-{os.getpid()}-"


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporary siblings of `target` whose owning process is gone (a write killed by SIGKILL or
    a power cut); those of a live process are left alone. Returns what was removed."""
    target = Path(target)
    removed = []
    for p in target.parent.glob(f".{target.name}.tmp-*-*"):
        pid = p.name[len(f".{target.name}.tmp-") :].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        _remove(p)
        removed.append(p)
    return removed


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
