"""A real MLflow tracking server for the tests (SQLite backend, loopback): started and awaited, and its port
held after it was killed until a client calls it (proof that a run tried to log during the outage)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.cluster.helpers import BIN, stop_group, wait_for


def start_server(root: Path, port: int, log: Path, env: dict) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:`port` with its store in `root`, once it answers /health (stopped by its
    process group if it never does)."""
    with open(log, "a") as fh:
        server = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--artifacts-destination", str(root / "mlartifacts"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},  # its GenAI job runner: unused
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200,
            "mlflow server", 240, server, log,
        )  # fmt: skip
    except BaseException:
        stop_group(server)
        raise
    return server


def refused_a_call(port: int, timeout: float = 120.0) -> None:
    """Hold the server's port and wait until a client calls it, refusing the call (the server is down)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # the killed server's processes release the port a moment after the group is killed: poll for it
        deadline = time.monotonic() + 30
        while not _bound(s, port):
            assert time.monotonic() < deadline, f"port {port} still held 30 s after the server was killed"
            time.sleep(0.1)
        s.listen()
        s.settimeout(timeout)
        conn, _ = s.accept()  # socket.timeout: the run never tried to log during the outage
        conn.close()


def _bound(s: socket.socket, port: int) -> bool:
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True
