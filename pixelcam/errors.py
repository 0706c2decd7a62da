"""The errors a user can cause, in one light module: the CLI turns each into one line (`pixelcam: error:
...`, exit code 2) without importing the heavy modules that raise them. Every message names the file, key
or run concerned and what was expected."""

import errno
import os


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the file and key."""


class DatasetError(ValueError):
    """Bad input data; the message names the file, row or field and what was expected."""


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or of the wrong kind; the message names the path."""


class TrainError(RuntimeError):
    """The run failed (diverged, crashed past its retries, or cannot be scheduled)."""


class StudyError(RuntimeError):
    """The study cannot run (unschedulable, directory conflict, nothing to resume)."""


class ReportError(RuntimeError):
    """The study's MLflow records cannot be found or are incomplete."""


class SlideError(ValueError):
    """A whole-slide image is missing, unreadable, not pyramidal or corrupt; the message names the file."""


class StorageError(RuntimeError):
    """An object-store location that cannot be used (unknown scheme, unreachable, no such bucket)."""


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that `with` blocks clean up (no half-written output)."""


def mark_kept(exc: BaseException, kept: str) -> BaseException:
    """Attach to an interrupt (Ctrl-C, SIGTERM) what the interrupted command kept and how to continue; the
    CLI prints it on its one line."""
    exc.kept = kept  # type: ignore[attr-defined]
    return exc


def mark_abandoned(exc: BaseException) -> BaseException:
    """Mark an interrupt that left a thread inside a library (Ray Train's `fit`): the interpreter's orderly
    exit would shut Ray down under that thread, whose next call ends the process with Ray's exit code 1
    instead of the interrupt's; the CLI exits at once instead (the local Ray's processes share its fate)."""
    exc.abandoned = True  # type: ignore[attr-defined]
    return exc


USER_ERRORS = (
    ConfigError,
    DatasetError,
    CheckpointError,
    TrainError,
    StudyError,
    ReportError,
    SlideError,
    StorageError,
)


OS_HINTS = {
    errno.ENOSPC: "no space left on the device: free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded: free some space or write elsewhere",
    errno.EROFS: "the filesystem is read-only: write elsewhere",
    errno.EACCES: "permission denied: check the permissions of the path, or write elsewhere",
    errno.EPERM: "operation not permitted there: check the path, or write elsewhere",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "is a directory, a file was expected",
    errno.ENOENT: "no such file or directory",
    errno.ENAMETOOLONG: "a name in the path is too long",
    errno.EMFILE: "too many open files: raise the limit (`ulimit -n`)",
    errno.EIO: "input/output error: the disk or the network filesystem failed",
}


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an error's message (torch's and pyarrow's run to a page), else its type's name."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error: the path, what went wrong in words, the errno's name."""
    code = f" ({errno.errorcode[exc.errno]})" if exc.errno in errno.errorcode else ""
    path = exc.filename
    if path is None:  # e.g. pyarrow's errors: the path is in the message
        return first_line(exc) + code
    if exc.errno == errno.EEXIST and os.path.exists(path) and not os.path.isdir(path):
        return f"{path}: is a file, not a directory{code}"  # mkdir through a regular file
    what = OS_HINTS.get(exc.errno) or exc.strerror or first_line(exc)
    other = f" -> {exc.filename2}" if exc.filename2 is not None else ""
    return f"{path}{other}: {what}{code}"
