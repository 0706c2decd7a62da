"""SIGTERM and Ctrl-C on a command that started Ray: one line, exit 143 / 130, no stack dump (Ray's core
worker installs its own SIGTERM handler, which aborts with exit 134, unless ours is put back)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.shared import scenario, scenario_fixture

pytestmark = pytest.mark.e2e

SIGNALS = [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")]


def _train(root: Path, synth_dir: Path, environment: dict, workers: int, *extra: str) -> subprocess.Popen:
    cfg = root / "c.yaml"
    cfg.write_text(
        f"method: cam\nbackbone: resnet10t\ndata: {synth_dir}\nresize: 64\ncrop: 56\nepochs: 50\n"
        f"batch_size: 8\nnum_workers: {workers}\nstorage: {root / 'runs'}\n"
    )
    env = {**environment, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    cmd = ["pixelcam.cli", "train", "baseline", "--config", str(cfg), "--name", "r", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", *cmd], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )  # fmt: skip


@scenario("tmp_path_factory", "synth_dir", "environment")
def signalled_runs(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, environment: dict) -> dict:
    """Both signals, each on its own training run (started side by side, each with its own local Ray):
    SIGTERM on a single-worker run, Ctrl-C on a 2-worker Ray Train run (whose own handler would abort it
    with exit 1 and no word); the 2-worker run then continues with `--resume`, in the same MLflow run. Run
    from when the test run begins (about a minute, much of it waiting on Ray); returns what each did."""
    tmp_path = tmp_path_factory.mktemp("signals")
    roots = [tmp_path / signal.Signals(sig).name for sig, _, _ in SIGNALS]
    procs = []
    for root, workers in zip(roots, (1, 2)):
        root.mkdir()
        procs.append(_train(root, synth_dir, environment, workers))
    try:
        for proc, root, (sig, _, _) in zip(procs, roots, SIGNALS):
            runs = root / "runs" / "r"
            deadline = time.time() + 300
            while time.time() < deadline and not list(runs.glob("epoch_*")):  # training has started
                if proc.poll() is not None:
                    return {"roots": roots, "early": proc.stderr.read()[-2000:]}
                time.sleep(0.5)
            proc.send_signal(sig)
        errs = [proc.communicate(timeout=120)[1] for proc in procs]
        stopped = [(proc.returncode, err) for proc, err in zip(procs, errs)]
        if any(rc != want for (rc, _), (_, want, _) in zip(stopped, SIGNALS)):
            return {"roots": roots, "stopped": stopped}
        latest = max(int(p.name.split("_")[1]) for p in (roots[1] / "runs" / "r").glob("epoch_*"))
        killed = _runs(roots[1])
        resumed = _train(roots[1], synth_dir, environment, 2, "--resume", "--epochs", str(latest + 2))
        err = resumed.communicate(timeout=300)[1]
        return {
            "roots": roots,
            "stopped": stopped,
            "latest": latest,
            "killed": killed,
            "resumed": (resumed.returncode, err),
            "again": _runs(roots[1]),
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def _runs(root: Path) -> list[tuple[str, str, list[int]]]:
    """(run id, status, the steps of its valpx_pxap history) of every run in `root`'s MLflow store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [
        (
            r.info.run_id,
            r.info.status,
            sorted(m.step for m in client.get_metric_history(r.info.run_id, "valpx_pxap")),
        )
        for r in runs
    ]


signalled_runs_fixture = scenario_fixture("signalled_runs")


def test_a_training_run_stops_with_one_line_and_resumes(signalled_runs: dict):
    res = signalled_runs
    assert "early" not in res, f"a run ended before its first epoch: {res.get('early')}"
    for root, (rc, err), (_, want, line) in zip(res["roots"], res["stopped"], SIGNALS):
        assert rc == want, err[-3000:]
        kept = f"the epochs it finished are kept in {root / 'runs' / 'r'}; continue with the same command"
        assert f"pixelcam: {line}; {kept} and --resume" in err, err[-3000:]
        assert "SIGTERM received" not in err and "Traceback" not in err
        # as quiet as a study: none of Ray's process output (`(Actor pid=N)` lines), no colour codes
        assert "pid=" not in err and "\x1b[" not in err and "Token authentication" not in err, err
    ((run_id, status, _),) = res["killed"]
    assert status == "KILLED"
    rc, err = res["resumed"]
    assert rc == 0, err[-3000:]
    ((again_id, again_status, steps),) = res["again"]  # the same MLflow run, continued
    assert again_id == run_id and again_status == "FINISHED"
    # one epoch past the latest checkpoint (epochs that improved nothing were not checkpointed), each once
    assert steps == list(range(max(steps) + 1)) and max(steps) >= res["latest"] + 1
