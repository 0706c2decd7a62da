"""Atomic file output: write to a temporary sibling, then rename into place, so a reader (or a later run
after a crash) never sees a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str | bytes) -> None:
    """Write `text` (str or bytes) to `path` through a temporary sibling and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as indented, key-sorted JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))


def temporary_prefix(target: Path) -> str:
    """Name prefix of a temporary sibling of `target` owned by this process (`.NAME.tmp-PID-`)."""
    return f".{Path(target).name}.tmp-{os.getpid()}-"


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporary siblings of `target` whose owning process is gone (a write killed by SIGKILL or
    a power cut); those of a live process are left alone. Returns what was removed."""
    import shutil

    target = Path(target)
    removed = []
    for p in target.parent.glob(f".{target.name}.tmp-*-*"):
        pid = p.name[len(f".{target.name}.tmp-") :].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
