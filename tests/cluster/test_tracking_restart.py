"""A real MLflow tracking server (SQLite backend, loopback) killed and restarted in the middle of a training
run: the run's logging waits out the outage with a bounded back-off, the run completes, and every epoch's
metrics are in the store exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cluster.test_local_cluster import BIN, free_port, stop_group, wait_for

pytestmark = pytest.mark.e2e

EPOCHS = 5
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


def start_server(tmp_path: Path, port: int, log: Path) -> subprocess.Popen:
    with open(log, "a") as fh:
        server = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
             "--artifacts-destination", str(tmp_path / "mlartifacts"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    wait_for(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200,
        "mlflow server", 240, server, log,
    )  # fmt: skip
    return server


def test_training_survives_a_tracking_server_restart(tmp_path: Path, synth_dir: Path):
    from mlflow.tracking import MlflowClient

    from pixelcam.train.worker import EPOCH_METRICS

    port, log = free_port(), tmp_path / "mlflow.log"
    uri = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port, log)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG.format(data=synth_dir, epochs=EPOCHS, storage=tmp_path / "runs"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    train = subprocess.Popen(
        [sys.executable, "-m", "pixelcam.cli", "train", "baseline", "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    client = MlflowClient(uri)
    outage = None
    try:
        deadline = time.time() + 300
        while time.time() < deadline and outage is None:  # the first epoch is in: take the server away
            assert train.poll() is None, train.stdout.read()[-3000:]
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
            if runs and client.get_metric_history(runs[0].info.run_id, "valpx_pxap"):
                stop_group(server)
                outage = time.time()
            time.sleep(0.5)
        assert outage is not None, "the run never logged its first epoch"
        time.sleep(8)  # the next epochs end (and log) while the server is down
        server = start_server(tmp_path, port, log)  # same store, same port
        out, _ = train.communicate(timeout=600)
        assert train.returncode == 0, out[-3000:]
    finally:
        if train.poll() is None:
            train.kill()
        stop_group(server)
    # read the store itself: every epoch of every per-epoch metric once, nothing lost or duplicated
    server = start_server(tmp_path, port, log)
    try:
        (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert run.info.status == "FINISHED"
        for key in EPOCH_METRICS:
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            assert steps == list(range(EPOCHS)), (key, steps)
    finally:
        stop_group(server)
