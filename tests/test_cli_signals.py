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


def _train(root: Path, synth_dir: Path, workers: int, *extra: str) -> subprocess.Popen:
    cfg = root / "c.yaml"
    cfg.write_text(
        f"method: cam\nbackbone: resnet10t\ndata: {synth_dir}\nresize: 64\ncrop: 56\nepochs: 50\n"
        f"batch_size: 8\nnum_workers: {workers}\nstorage: {root / 'runs'}\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    cmd = ["pixelcam.cli", "train", "baseline", "--config", str(cfg), "--name", "r", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", *cmd], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )  # fmt: skip


def test_a_training_run_stops_with_one_line_and_resumes(tmp_path: Path, synth_dir: Path):
    """Both signals, each on its own training run (started side by side, each with its own local Ray):
    SIGTERM on a single-worker run, Ctrl-C on a 2-worker Ray Train run (whose own handler would abort it
    with exit 1 and no word); the 2-worker run then continues with `--resume`, in the same MLflow run."""
    from mlflow.tracking import MlflowClient

    roots = [tmp_path / signal.Signals(sig).name for sig, _, _ in SIGNALS]
    procs = []
    for root, workers in zip(roots, (1, 2)):
        root.mkdir()
        procs.append(_train(root, synth_dir, workers))
    try:
        for proc, root, (sig, _, _) in zip(procs, roots, SIGNALS):
            runs = root / "runs" / "r"
            deadline = time.time() + 300
            while time.time() < deadline and not list(runs.glob("epoch_*")):  # training has started
                assert proc.poll() is None, proc.stderr.read()[-2000:]
                time.sleep(0.5)
            proc.send_signal(sig)
        for proc, root, (_, rc, line) in zip(procs, roots, SIGNALS):
            err = proc.communicate(timeout=120)[1]
            assert proc.returncode == rc, err[-3000:]
            kept = f"the epochs it finished are kept in {root / 'runs' / 'r'}; continue with the same command"
            assert f"pixelcam: {line}; {kept} and --resume" in err, err[-3000:]
            assert "SIGTERM received" not in err and "Traceback" not in err
            # as quiet as a study: none of Ray's process output (`(Actor pid=N)` lines), no colour codes
            assert "pid=" not in err and "\x1b[" not in err and "Token authentication" not in err, err
        uri = f"sqlite:///{roots[1] / 'mlflow.db'}"
        client = MlflowClient(uri)
        (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert run.info.status == "KILLED"
        # one epoch past the latest checkpoint (epochs that improved nothing were not checkpointed)
        latest = max(int(p.name.split("_")[1]) for p in (roots[1] / "runs" / "r").glob("epoch_*"))
        resumed = _train(roots[1], synth_dir, 2, "--resume", "--epochs", str(latest + 2))
        err = resumed.communicate(timeout=300)[1]
        assert resumed.returncode == 0, err[-3000:]
        (again,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "valpx_pxap"))
        assert steps == list(range(max(steps) + 1)) and max(steps) >= latest + 1  # each epoch once
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
