"""Ray 2.60: the console switches and the signal handling pixelcam needs, where Ray has no public API.

- Environment flags, read by Ray when it starts (set before `import ray` has started anything):
  `RAY_TRAIN_ENABLE_PRINT_PATCH=0` (Ray Train V2 reroutes worker prints, each then shows twice on the
  driver; `ray/train/v2/_internal/constants.py`, undocumented), `RAY_DATA_DISABLE_PROGRESS_BARS=1`
  (documented in Ray Data's progress-bar docs), and, for a quiet console, `RAY_AIR_NEW_OUTPUT=0` (the
  documented switch of Tune's output engine, ray-project/ray#35129: with `verbose=0` Tune then prints
  nothing itself). `TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1` (documented with Tune's environment variables):
  no per-trial `result.json`, `progress.csv`, `params.json/.pkl` and TensorBoard file; a study records its
  trials in MLflow and its state file, and on object storage those five files were re-uploaded at every
  epoch (about a third of a study's requests to the bucket).
- Loggers silenced on a quiet console by name (Ray has no per-module log level API): notes from the token
  authentication set-up and Ray Data's progress module, and Ray Train's per-report INFO lines, which its
  execution context logs on a logger named after its own file path (`logging.getLogger(__file__)`), so
  `LoggingConfig` does not reach it.
- SIGTERM: Ray's core worker registers abseil's failure signal handler for SIGTERM in the driver, which
  dumps a stack trace and aborts (exit 134; ray-project/ray#64830, #52898); `keep_sigterm_handler` puts
  the caller's handler back after `ray.init`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

RAY_ENV = {
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
    "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
}
QUIET_ENV = {"RAY_AIR_NEW_OUTPUT": "0"}
NOTE_LOGGERS = (
    "ray._private.authentication.authentication_token_setup",  # "token authentication is enabled"
    "ray.data._internal.progress",  # "progress bars are disabled"
    "ray.tune.analysis.experiment_analysis",  # "both result.json and progress.csv were not found" (our flag)
)
TRAIN_REPORT_MODULE = "ray.train.v2._internal.execution.context"


def set_env(quiet: bool) -> None:
    """The environment flags above (a user's own setting wins)."""
    for key, value in {**RAY_ENV, **(QUIET_ENV if quiet else {})}.items():
        os.environ.setdefault(key, value)


def quiet_notes() -> None:
    """Silence Ray's notes that are not problems (token auth on, progress bars off)."""
    for name in NOTE_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_train_report_logs() -> None:
    """Ray Train's INFO line per `ray.train.report`: its logger is named after its module's file."""
    spec = importlib.util.find_spec(TRAIN_REPORT_MODULE)
    if spec is not None and spec.origin:
        logging.getLogger(spec.origin).setLevel(logging.WARNING)


@contextlib.contextmanager
def keep_sigterm_handler() -> Iterator[None]:
    """Run `ray.init` inside: the SIGTERM handler installed before it is installed again after it."""
    main = threading.current_thread() is threading.main_thread()
    ours = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if callable(ours):
            signal.signal(signal.SIGTERM, ours)


@contextlib.contextmanager
def stop_tune_gracefully() -> Iterator[list[int]]:
    """Run `Tuner.fit()` inside, in the main thread: Ctrl-C and SIGTERM then ask Tune to stop as its own
    Ctrl-C does (save the experiment's state, stop its trials, return) and are recorded in the yielded list,
    which the caller turns into the interrupt once `fit` has returned. Tune's own SIGINT handler would stop
    it without a trace in what `fit` returns (the interrupted experiment looks finished); it is switched off
    with the documented `TUNE_DISABLE_SIGINT_HANDLER`, and the stop is asked through SIGUSR1, which Tune's
    run loop always listens to (`ray/tune/tune.py`, `_setup_signal_catching`). A second signal stops at
    once (KeyboardInterrupt)."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def on_signal(signum: int, frame: object) -> None:
        got.append(signum)
        if len(got) > 1:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGUSR1)

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    for s in before:
        signal.signal(s, on_signal)
    try:
        yield got
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        if env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = env


RAYLET_PREFIX = "(raylet)"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PREFIX = re.compile(r"^\((?:(?P<actor>\w+) )?pid=[^)]*\) ?")  # `(RayTrainWorker pid=12)`, `(pid=gcs_server)`


class RayletFilter:
    """A console stream that leaves out the raylet's messages, which the driver prints whatever
    `log_to_driver` says (its error listener thread, `print_worker_logs`, one `print` per message: the
    whole message, possibly several lines, in one write, then the newline). They stay in Ray's session logs
    (raylet.out), where a quiet console sends everything of Ray's; e.g. "8 PYTHON worker processes have
    been started ..." when trials start actors in a burst.

    With `keep` (a quiet console that still shows some workers' own lines, as `pixelcam train` does with
    its Train workers' progress): every line Ray forwards from its processes (`(Actor pid=N) ...`, in
    colour) is dropped unless `keep(actor, message)`, and a kept one is written without its prefix."""

    def __init__(self, stream: TextIO, keep: Callable[[str | None, str], bool] | None = None) -> None:
        self._stream = stream
        self.keep = keep
        self._skip_newline = threading.local()

    def write(self, text: str) -> int:
        if getattr(self._skip_newline, "on", False):
            self._skip_newline.on = False
            if text == "\n":
                return len(text)
        plain = _ANSI.sub("", text)
        if plain.lstrip().startswith(RAYLET_PREFIX):
            self._skip_newline.on = True
            return len(text)
        match = _PREFIX.match(plain) if self.keep is not None else None
        if match is not None:
            message = plain[match.end() :]
            if self.keep(match.group("actor"), message):
                return self._stream.write(message)
            self._skip_newline.on = True
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, ...
        return getattr(self._stream, name)


def hide_raylet_messages(keep: Callable[[str | None, str], bool] | None = None) -> None:
    """Route this process's stdout and stderr through `RayletFilter` (once; `keep` as given last)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, RayletFilter):
            stream.keep = keep
        else:
            setattr(sys, name, RayletFilter(stream, keep))
