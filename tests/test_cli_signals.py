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

SIGNALS = [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")]


def test_a_training_run_stops_with_one_line(tmp_path: Path, synth_dir: Path):
    """Both signals, each on its own training run (started side by side: each has its own local Ray)."""
    procs = []
    for sig, _, _ in SIGNALS:
        root = tmp_path / signal.Signals(sig).name
        root.mkdir()
        cfg = root / "c.yaml"
        cfg.write_text(
            f"method: cam\nbackbone: resnet10t\ndata: {synth_dir}\nresize: 64\ncrop: 56\nepochs: 50\n"
            f"batch_size: 8\nnum_workers: 1\nstorage: {root / 'runs'}\n"
        )
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
        cmd = ["pixelcam.cli", "train", "baseline", "--config", str(cfg), "--name", "r"]
        proc = subprocess.Popen(
            [sys.executable, "-m", *cmd], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
            text=True, start_new_session=True,
        )  # fmt: skip
        procs.append(proc)
    try:
        for proc, (sig, _, _) in zip(procs, SIGNALS):
            runs = tmp_path / signal.Signals(sig).name / "runs" / "r"
            deadline = time.time() + 300
            while time.time() < deadline and not list(runs.glob("epoch_*")):  # training has started
                assert proc.poll() is None, proc.stderr.read()[-2000:]
                time.sleep(0.5)
            proc.send_signal(sig)
        for proc, (_, rc, line) in zip(procs, SIGNALS):
            err = proc.communicate(timeout=120)[1]
            assert proc.returncode == rc, err[-3000:]
            assert f"pixelcam: {line}; nothing half-written was kept" in err
            assert "SIGTERM received" not in err and "Traceback" not in err
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
