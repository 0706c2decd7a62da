"""What `pixelcam.adapters.ray` relies on in the pinned Ray: the flags are still read by Ray's own code,
the loggers still exist under those names, Ray Train still logs its reports on the logger named after its
context module's file, the raylet's messages still reach the driver's console as `(raylet) ...` lines in one
write each (and the filter drops exactly those), and `ray.init` still replaces the SIGTERM handler (the
reason `keep_sigterm_handler` exists; if this stops failing, the adapter can go)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import ray

from pixelcam.adapters import ray as adapter
from tests.ray_probe import ray_probe_fixture  # noqa: F401  (the session fixture ray_probe)

RAY_DIR = Path(ray.__file__).parent


def _sources_mention(name: str) -> bool:
    return any(name in f.read_text(errors="ignore") for f in RAY_DIR.rglob("*.py"))


def test_every_flag_is_still_read_by_ray():
    for flag in [*adapter.RAY_ENV, *adapter.QUIET_ENV]:
        assert _sources_mention(f'"{flag}"'), f"Ray {ray.__version__} no longer reads {flag}"


def test_every_quieted_logger_names_an_existing_module():
    for name in [*adapter.NOTE_LOGGERS, adapter.TRAIN_REPORT_MODULE]:
        assert importlib.util.find_spec(name) is not None, f"Ray {ray.__version__} has no module {name}"
    context = Path(importlib.util.find_spec(adapter.TRAIN_REPORT_MODULE).origin).read_text()
    assert "logging.getLogger(__file__)" in context  # the logger named after the file


def test_the_raylet_filter_drops_exactly_the_raylets_messages():
    from ray._private.worker import print_worker_logs  # the driver's printer of the raylet's errors

    out = io.StringIO()
    console = adapter.RayletFilter(out)
    print("epoch 1/2  loss 0.5", file=console)
    message = "8 PYTHON worker processes have been started on node ...\nThis could be a result of ..."
    print_worker_logs({"pid": "raylet", "lines": [message], "ip": "x", "localhost": "x"}, console)
    print_worker_logs({"pid": "1234", "lines": ["a worker's line"], "ip": "x", "localhost": "x"}, console)
    print("done", file=console, flush=True)
    text = out.getvalue()
    assert "PYTHON worker" not in text and "This could be" not in text
    assert text.startswith("epoch 1/2  loss 0.5\n") and text.endswith("done\n")
    assert "a worker's line" in text  # only the raylet's messages go


def test_ray_init_replaces_the_sigterm_handler_and_the_adapter_puts_it_back(ray_probe: dict):
    """`tests/ray_probe.py`: a bare `ray.init` in a process of its own, then pixelcam's `init_ray`."""
    assert ray_probe["rc"] == 0, ray_probe["stderr"][-2000:]
    res = ray_probe["result"]
    assert res["kept"] is True
    gone = "ray.init no longer replaces SIGTERM's handler: keep_sigterm_handler can go"
    assert res["replaced"] is True, gone


def test_a_quiet_console_keeps_only_the_lines_it_is_told_to_without_ray_prefix():
    from ray._private.worker import print_worker_logs

    out = io.StringIO()
    console = adapter.RayletFilter(out, keep=lambda actor, line: actor == "RayTrainWorker")
    worker = {
        "pid": "12",
        "actor_name": "RayTrainWorker",
        "lines": ["[cam x] epoch 1/2"],
        "ip": "x",
        "localhost": "x",
    }
    gcs = {"pid": "gcs_server", "lines": ["Failed to kill actor NIL_ID"], "ip": "x", "localhost": "x"}
    other = {
        "pid": "13",
        "actor_name": "SplitCoordinator",
        "lines": ["Dataset finished"],
        "ip": "x",
        "localhost": "x",
    }
    for data in (worker, gcs, other):
        print_worker_logs(data, console)
    print("selected epoch 2", file=console)
    assert out.getvalue() == "[cam x] epoch 1/2\nselected epoch 2\n"
