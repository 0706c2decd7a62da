"""A real MLflow tracking server (SQLite backend, loopback) killed and restarted in the middle of a training
run: the run's logging waits out the outage with a bounded back-off, the run completes, and every epoch's
metrics are in the store exactly once."""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cluster.helpers import BIN, free_port, stop_group, wait_for
from tests.shared import scenario, scenario_fixture

pytestmark = pytest.mark.e2e

EPOCHS = 2  # the server is killed after epoch 1 is logged; epoch 2 is logged across the outage
CONFIG = """\
method: cam
backbone: resnet10t
data: {data}
source: synth-colon
resize: 64
crop: 56
epochs: {epochs}
batch_size: 8
lr: 0.01
num_workers: 1
storage: {storage}
name: restart
"""


def start_server(tmp_path: Path, port: int, log: Path, env: dict) -> subprocess.Popen:
    with open(log, "a") as fh:
        server = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
             "--artifacts-destination", str(tmp_path / "mlartifacts"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},  # its GenAI job runner: unused
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    wait_for(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200,
        "mlflow server", 240, server, log,
    )  # fmt: skip
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


@scenario("tmp_path_factory", "synth_dir", "environment")
def restarted_server(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, environment: dict) -> Path:
    """The run and the outage, from when the test run begins (about 40 s, much of it waiting on the
    server); returns the directory of the server's store."""
    tmp_path = tmp_path_factory.mktemp("restart")
    port, log = free_port(), tmp_path / "mlflow.log"
    uri = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port, log, environment)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG.format(data=synth_dir, epochs=EPOCHS, storage=tmp_path / "runs"))
    env = {**environment, "MLFLOW_TRACKING_URI": uri}
    train = subprocess.Popen(
        [sys.executable, "-m", "pixelcam.cli", "train", "baseline", "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(x) for x in train.stdout] + [lines.put(None)], daemon=True
    ).start()
    seen: list[str] = []

    def until(text: str) -> None:  # the training's own epoch lines: what it did meanwhile
        while not any(text in x for x in seen):
            line = lines.get(timeout=300)
            assert line is not None, "".join(seen)[-3000:]
            seen.append(line)

    try:
        until(f"epoch 1/{EPOCHS}")  # the first epoch is logged: take the server away
        stop_group(server)
        refused_a_call(port)  # the run tried to log the next epoch while the server was down
        server = start_server(tmp_path, port, log, environment)  # same store, same port
        assert train.wait(timeout=600) == 0, "".join(seen)[-3000:]
    finally:
        if train.poll() is None:
            train.kill()
        stop_group(server)
    return tmp_path


restarted_server_fixture = scenario_fixture("restarted_server")


def test_training_survives_a_tracking_server_restart(restarted_server: Path):
    from mlflow.tracking import MlflowClient

    from pixelcam.train.worker import EPOCH_METRICS

    tmp_path = restarted_server
    # the store itself: every epoch of every per-epoch metric once, nothing lost or duplicated
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    for key in EPOCH_METRICS:
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
        assert steps == list(range(EPOCHS)), (key, steps)
