"""One writer per output: `exclusive(target)` holds an OS file lock (`filelock`, flock on Linux) on a hidden
`.NAME.lock` beside a local `target` for as long as a dataset, run, study or prediction is written there. A
second writer fails at once with one line naming the holder's pid, host and command; the OS drops the lock
of a process that dies, so a stale lock is simply taken over. Object stores have no such lock: two writers
of one `s3://` prefix are not detected (Ray, Tune and MLflow do not lock there either)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from pixelcam.errors import StorageError
from pixelcam.storage.location import Location


def lock_path(target: Path) -> Path:
    """The lock file of `target`: a hidden sibling, so the lock covers creating `target` as well."""
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def exclusive(target: str | os.PathLike | Location, what: str = "output") -> Iterator[None]:
    """Hold `target`'s lock (re-entrant within one process); StorageError naming the holder when another
    process writes it. A remote location (object store) is not locked."""
    loc = target if isinstance(target, Location) else Location(target)
    if loc.is_remote:
        yield
        return
    path = loc.local.absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(path), thread_local=False, is_singleton=True)
    holder = lock_path(path).with_suffix(".lock.holder")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StorageError(
            f"{path}: another {_holder(holder)} is writing this {what}; wait for it to finish or choose "
            "another name"
        ) from None
    first = lock.lock_counter == 1
    if first:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "command": sys.argv}
        holder.write_text(json.dumps(info))
    try:
        yield
    finally:
        if first:
            holder.unlink(missing_ok=True)
        lock.release()


def _holder(holder: Path) -> str:
    """`process (pid PID on HOST: its first arguments)` from the holder's note (written once it locked)."""
    try:
        info = json.loads(holder.read_text())
    except (OSError, ValueError):
        return "process"
    command = (
        " ".join(Path(info["command"][0]).name.split() + info["command"][1:3]) if info["command"] else "?"
    )
    return f"process (pid {info['pid']} on {info['host']}: {command} ...)"
