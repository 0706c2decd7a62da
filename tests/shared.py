"""Session resources shared by every test process of a run (pytest-xdist's workers, or the one process
without it): computed once under a file lock in the run's common temporary root, their description kept
there as JSON for the other processes. Used for what is expensive and read-only once made: the S3 server,
the session's trained models, the tiny study."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary root every process of this run shares (a worker's base is one level below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], Any]) -> Any:
    """`make(directory)`'s JSON-able result, computed by the first process that asks, read by the others."""
    root = shared_root(tmp_path_factory)
    record = root / f"{name}.json"
    with FileLock(root / f"{name}.lock"):
        if not record.is_file():
            directory = root / name
            directory.mkdir(exist_ok=True)
            record.write_text(json.dumps(make(directory)))
    return json.loads(record.read_text())


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports, each held bound until all are picked (one at a time, the OS may hand
    a port just released straight back)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


WATCHER = """
import os, subprocess, sys, time
server = subprocess.Popen(sys.argv[2:])
while server.poll() is None:
    try:
        os.kill(int(sys.argv[1]), 0)
    except OSError:  # the test run is gone: so is its server
        server.terminate()
        break
    time.sleep(1)
"""


def start_s3_server(directory: Path) -> dict[str, str]:
    """moto's S3 server on a loopback port, in a process that ends with the test run (it watches the run's
    first process); returns the environment that reaches it (AWS_ENDPOINT_URL, as a MinIO user sets it)."""
    port = free_port()
    run = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()
    server = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with open(directory / "moto.log", "w") as log:
        subprocess.Popen(
            [sys.executable, "-c", WATCHER, str(run), *server],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": url,
    }


# --- scenarios started early ----------------------------------------------------------------------------
# A slow end-to-end scenario that mostly waits (processes starting, servers answering, a client timing out) is
# started in a thread when the run begins, as soon as a selected test asks for it, and its test waits for its
# result: the unit tests meanwhile use the cores it leaves idle. A scenario spawns its processes with an
# explicit `env=` (a snapshot): a child exec'ing the live `environ` while the tests' thread sets a variable
# can fail with EFAULT ("Bad address").
# three at once, with pytest's own thread four: the scenarios mostly wait on their processes, and with two the
# last ones started late and the run's end was pytest's thread alone on one core (~140 idle CPU-s)
_POOL = ThreadPoolExecutor(max_workers=3, thread_name_prefix="scenario")
_STARTED: dict[str, Future] = {}
SCENARIOS: dict[str, tuple[tuple[str, ...], Callable[..., Any]]] = {}


FIRST: set[str] = set()


def scenario(*inputs: str, first: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn(*fixture values of inputs)` as the early scenario of the fixture named like it; `first`:
    started before the others (the longest, which many tests wait for)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        SCENARIOS[fn.__name__] = (inputs, fn)
        if first:
            FIRST.add(fn.__name__)
        return fn

    return register


def start(name: str, request: pytest.FixtureRequest) -> Future:
    """Start scenario `name` (its inputs resolved here, in pytest's thread) unless it runs already."""
    if name not in _STARTED:
        inputs, fn = SCENARIOS[name]
        _STARTED[name] = _POOL.submit(fn, *(request.getfixturevalue(f) for f in inputs))
    return _STARTED[name]


def run_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """The run's test order, by module (a module's tests stay together, in their order, so that its module
    fixtures are set up once): first the modules without end-to-end tests, then the end-to-end modules that
    wait on no late scenario, last those that read a scenario started after the FIRST ones, in their order.

    The scenarios run in the pool's threads from when the run begins; pytest's thread works through the
    unit tests meanwhile (they fill what the scenarios leave idle while they wait on their processes),
    then through the end-to-end tests, which start processes of their own. Measured on 2 cores: with the
    end-to-end modules first, the last minutes were pytest's thread alone on its unit tests, one core idle
    (135-140 idle CPU-s per run); unit tests first, 35."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)

    def group(tests: list[pytest.Item]) -> int:
        names = {f for t in tests for f in getattr(t, "fixturenames", ())}
        if any(n in SCENARIOS and n not in FIRST for n in names):
            return 2
        return 1 if any(t.get_closest_marker("e2e") for t in tests) else 0

    ordered = sorted(modules.values(), key=group)  # stable: the collection order within a group
    return [item for tests in ordered for item in tests]


def shutdown() -> None:
    """Wait for the scenarios still running (a deselected test's) and end their threads: none is left
    for the interpreter's exit, where a thread still inside Ray or torch can crash it."""
    _POOL.shutdown(wait=True, cancel_futures=True)


def scenario_fixture(name: str) -> Any:
    """The session fixture `name` that waits for its scenario's result."""

    @pytest.fixture(scope="session", name=name)
    def fixture(request: pytest.FixtureRequest) -> Any:
        return start(name, request).result()

    return fixture
