"""One writer per output: `exclusive(target)` holds an OS file lock (`flock`) on a hidden `.NAME.lock` beside
a local `target` for as long as a dataset, run, study or prediction is written there. A second writer fails
at once with one line naming the holder's pid, host and command (written in the lock file). The OS drops the
lock of a process that dies, so a stale lock is simply taken over; the holder removes the file when it is
done (after checking, on every acquisition, that the file it locked is still the one at that name), so no
lock file is left in the user's directories. Object stores have no such lock: two writers of one `s3://`
prefix are not detected (Ray, Tune and MLflow do not lock there either)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from pixelcam.errors import StorageError

_HELD: dict[Path, int] = {}  # lock file -> depth, for re-entrant use within this process
_GUARD = threading.Lock()


def lock_path(target: Path) -> Path:
    """The lock file of `target`: a hidden sibling, so the lock covers creating `target` as well."""
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def exclusive(target: str | os.PathLike, what: str = "output") -> Iterator[None]:
    """Hold `target`'s lock (re-entrant within one process); StorageError naming the holder when another
    process writes it. A remote location (a URI, or a remote `Location`) is not locked."""
    if getattr(target, "is_remote", False) or "://" in str(target):
        yield
        return
    lock = lock_path(Path(os.fspath(target)).absolute())
    with _GUARD:
        depth = _HELD.get(lock, 0)
        _HELD[lock] = depth + 1
    fd, made = None, []
    try:
        if depth == 0:
            made = [d for d in (lock.parent, *lock.parent.parents) if not d.exists()]  # deepest first
            fd = _acquire(lock, what)
        yield
    finally:
        with _GUARD:
            _HELD[lock] -= 1
            if not _HELD[lock]:
                del _HELD[lock]
        if fd is not None:
            lock.unlink(missing_ok=True)  # while still held: the next writer creates a fresh file
            os.close(fd)
        for d in made:  # directories made only to hold the lock go again, if nothing else was put there
            with contextlib.suppress(OSError):
                d.rmdir()


def _acquire(lock: Path, what: str) -> int:
    """Lock `lock` (created if missing) and write the holder's note in it; StorageError when it is held."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            target = lock.with_name(lock.name[1 : -len(".lock")])
            raise StorageError(
                f"{target}: another {_holder(lock)} is writing this {what}; wait for it to finish or choose "
                "another name"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not removed by a holder that finished between our open and our lock
            break
        os.close(fd)
    note = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "command": sys.argv}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(note).encode())
    return fd


def _holder(lock: Path) -> str:
    """`process (pid PID on HOST: its first arguments)` from the holder's note."""
    try:
        info = json.loads(lock.read_text())
    except (OSError, ValueError):
        return "process"
    command = " ".join(info.get("command", [])[1:4])
    return f"process (pid {info['pid']} on {info['host']}{f': {command}' if command else ''})"
