"""The one call pixelcam makes into the C library: a worker process asks the kernel to end it when its
parent dies (Linux's `prctl(PR_SET_PDEATHSIG)`), so that no process of ours outlives a parent killed by
SIGKILL, where no handler of the parent's can run. Python's pools leave their workers to notice a closed
pipe, which a worker busy rendering does not read."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """End this process (SIGKILL) when its parent dies; exit at once if `parent` is gone already (it died
    before this call). A pool's `initializer`; a no-op for the kernel's part outside Linux."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
