"""What `pixelcam.adapters.ray` relies on in the pinned Ray: the flags are still read by Ray's own code,
the loggers still exist under those names, Ray Train still logs its reports on the logger named after its
context module's file, the raylet's messages still reach the driver's console as `(raylet) ...` lines in one
write each (and the filter drops exactly those), and `ray.init` still replaces the SIGTERM handler (the
reason `keep_sigterm_handler` exists; if this stops failing, the adapter can go)."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import ray

from pixelcam.adapters import ray as adapter
from tests.shared import scenario, scenario_fixture

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


PROBE = """
import signal, sys
import ray
from pixelcam.adapters.ray import keep_sigterm_handler
mine = lambda *a: None
signal.signal(signal.SIGTERM, mine)
ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
replaced = signal.getsignal(signal.SIGTERM) is not mine
ray.shutdown()
signal.signal(signal.SIGTERM, mine)
with keep_sigterm_handler():
    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
kept = signal.getsignal(signal.SIGTERM) is mine
ray.shutdown()
print(replaced, kept)
"""


@scenario("environment", first=True)  # the run's first e2e test waits for it
def sigterm_probe(environment: dict[str, str]) -> dict:
    """PROBE in its own process, started when the run begins (two `ray.init`s: about 20 s)."""
    cmd = [sys.executable, "-c", PROBE]  # an explicit environment, as every scenario's (tests/shared.py)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=environment)
    return {"rc": out.returncode, "stdout": out.stdout, "stderr": out.stderr}


sigterm_probe_fixture = scenario_fixture("sigterm_probe")


def test_ray_init_replaces_the_sigterm_handler_and_the_adapter_puts_it_back(sigterm_probe: dict):
    assert sigterm_probe["rc"] == 0, sigterm_probe["stderr"][-2000:]
    replaced, kept = sigterm_probe["stdout"].split()[-2:]
    assert kept == "True"
    assert replaced == "True", "ray.init no longer replaces SIGTERM's handler: keep_sigterm_handler can go"


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
