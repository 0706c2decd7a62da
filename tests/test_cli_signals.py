"""SIGTERM and Ctrl-C on a command that started Ray: one line, exit 143 / 130, no stack dump (Ray's core
worker installs its own SIGTERM handler, which aborts with exit 134, unless ours is put back)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("sig", "rc", "line"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")],
)
def test_a_training_run_stops_with_one_line(tmp_path: Path, synth_dir: Path, sig: int, rc: int, line: str):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"method: cam\nbackbone: resnet10t\ndata: {synth_dir}\nresize: 64\ncrop: 56\nepochs: 50\n"
        f"batch_size: 8\nnum_workers: 1\nstorage: {tmp_path / 'runs'}\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pixelcam.cli", "train", "baseline", "--config", str(cfg), "--name", "r"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list((tmp_path / "runs" / "r").glob("epoch_*")):
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.5)
    proc.send_signal(sig)
    try:
        err = proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == rc, err[-3000:]
    assert f"pixelcam: {line}; nothing half-written was kept" in err
    assert "SIGTERM received" not in err and "Traceback" not in err
