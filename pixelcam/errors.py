"""The errors a user can cause, in one light module: the CLI turns each into one line (`pixelcam: error:
...`, exit code 2) without importing the heavy modules that raise them. Every message names the file, key
or run concerned and what was expected."""


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
