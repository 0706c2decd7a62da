"""SIGTERM and Ctrl-C on a command that started Ray: one line, exit 143 / 130, no stack dump (Ray's core
worker installs its own SIGTERM handler, which aborts with exit 134, unless ours is put back). The SIGTERM'd
run logs to a real MLflow tracking server that is killed and restarted under it first: its logging waits out
the outage with a bounded back-off, and every epoch it finished is in the store exactly once."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cluster.helpers import stop_group
from tests.mlflow_server import refused_a_call, start_server
from tests.shared import free_port, scenario, scenario_fixture

pytestmark = pytest.mark.e2e

SIGNALS = [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")]


def _train(root: Path, synth_dir: Path, env: dict, workers: int, *extra: str) -> subprocess.Popen:
    """`pixelcam train baseline` of 50 epochs (stopped long before), logging where `env` says; its stdout
    piped, its stderr in `root`/stderr.log (`_stderr`)."""
    cfg = root / "c.yaml"
    cfg.write_text(
        f"method: cam\nbackbone: resnet10t\ndata: {synth_dir}\nresize: 64\ncrop: 56\nepochs: 50\n"
        f"batch_size: 8\nnum_workers: {workers}\nstorage: {root / 'runs'}\n"
    )
    cmd = ["pixelcam.cli", "train", "baseline", "--config", str(cfg), "--name", "r", *extra]
    with open(root / "stderr.log", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", *cmd], env=env, stderr=err, stdout=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip


def _stderr(root: Path) -> str:
    return (root / "stderr.log").read_text()


def _interrupt_once_training(proc: subprocess.Popen, root: Path) -> None:
    """Ctrl-C (SIGINT) once the run has written its first epoch's checkpoint (not if it ended before)."""
    deadline = time.time() + 300
    while time.time() < deadline and not list((root / "runs" / "r").glob("epoch_*")):
        if proc.poll() is not None:
            return
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)


def _lines(proc: subprocess.Popen) -> queue.Queue:
    """The process's stdout lines as they come (None at its end), read by a thread of their own."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)], daemon=True
    ).start()
    return lines


def _until(lines: queue.Queue, text: str, seen: list[str]) -> bool:
    """Read lines until one holds `text` (True) or the output ends (False)."""
    while not any(text in x for x in seen):
        line = lines.get(timeout=300)
        if line is None:
            return False
        seen.append(line)
    return True


@scenario("tmp_path_factory", "synth_dir", "environment")
def signalled_runs(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, environment: dict) -> dict:
    """Both signals, each on its own training run (started side by side, each with its own local Ray):
    SIGTERM on a single-worker run, after its tracking server was killed and restarted under it (epoch 1
    logged, then the outage, then epoch 3 printed: epoch 2 was logged across it); Ctrl-C on a 2-worker Ray
    Train run (whose own handler would abort it with exit 1 and no word), which then continues with
    `--resume`, in the same MLflow run. Run from when the test run begins (about a minute, much of it waiting
    on Ray and the server); returns what each did."""
    tmp_path = tmp_path_factory.mktemp("signals")
    roots = [tmp_path / signal.Signals(sig).name for sig, _, _ in SIGNALS]
    for root in roots:
        root.mkdir()
    port, log = free_port(), roots[0] / "mlflow.log"
    server = start_server(roots[0], port, log, environment)
    uris = [f"http://127.0.0.1:{port}", f"sqlite:///{roots[1] / 'mlflow.db'}"]
    procs = [
        _train(root, synth_dir, {**environment, "MLFLOW_TRACKING_URI": uri}, workers)
        for root, uri, workers in zip(roots, uris, (1, 2))
    ]
    streams = [_lines(p) for p in procs]
    seen: list[str] = []
    ctrl_c = threading.Thread(target=_interrupt_once_training, args=(procs[1], roots[1]), daemon=True)
    ctrl_c.start()  # meanwhile: its first epoch comes while the other run's server is away
    try:
        if not _until(streams[0], "epoch 1/50", seen):  # the first epoch is logged: take the server away
            return {"roots": roots, "early": "".join(seen)[-2000:] + _stderr(roots[0])[-2000:]}
        stop_group(server)
        refused_a_call(port)  # the run tried to log the next epoch while the server was down
        server = start_server(roots[0], port, log, environment)  # same store, same port
        if not _until(streams[0], "epoch 3/50", seen):  # epoch 2 was logged across the outage
            return {"roots": roots, "early": "".join(seen)[-2000:] + _stderr(roots[0])[-2000:]}
        procs[0].send_signal(signal.SIGTERM)
        ctrl_c.join(timeout=300)
        stopped = [(proc.wait(timeout=120), _stderr(root)) for proc, root in zip(procs, roots)]
        if any(rc != want for (rc, _), (_, want, _) in zip(stopped, SIGNALS)):
            return {"roots": roots, "stopped": stopped}
        latest = max(int(p.name.split("_")[1]) for p in (roots[1] / "runs" / "r").glob("epoch_*"))
        killed = _runs(uris[1])
        env = {**environment, "MLFLOW_TRACKING_URI": uris[1]}
        resumed = _train(roots[1], synth_dir, env, 2, "--resume", "--epochs", str(latest + 2))
        resumed.communicate(timeout=300)
        err = _stderr(roots[1])
        from pixelcam.train.worker import EPOCH_METRICS

        return {
            "roots": roots,
            "stopped": stopped,
            "tracked": _runs(uris[0], EPOCH_METRICS),  # read through the restarted server
            "latest": latest,
            "killed": killed,
            "resumed": (resumed.returncode, err),
            "again": _runs(uris[1]),
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        stop_group(server)


def _runs(uri: str, keys: tuple[str, ...] = ("valpx_pxap",)) -> list[tuple[str, str, dict[str, list[int]]]]:
    """(run id, status, the steps of each of its `keys` metric histories) of every run in the store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [
        (
            r.info.run_id,
            r.info.status,
            {k: sorted(m.step for m in client.get_metric_history(r.info.run_id, k)) for k in keys},
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
    ((again_id, again_status, histories),) = res["again"]  # the same MLflow run, continued
    assert again_id == run_id and again_status == "FINISHED"
    steps = histories["valpx_pxap"]
    # one epoch past the latest checkpoint (epochs that improved nothing were not checkpointed), each once
    assert steps == list(range(max(steps) + 1)) and max(steps) >= res["latest"] + 1


def test_training_survives_a_tracking_server_restart(signalled_runs: dict):
    """The SIGTERM'd run's server was killed after its epoch 1 and restarted: the run went on, was closed as
    KILLED by the signal, and every per-epoch metric of the epochs it logged is in the store once."""
    assert "early" not in signalled_runs, signalled_runs.get("early")
    ((_, status, histories),) = signalled_runs["tracked"]
    assert status == "KILLED"
    for key, steps in histories.items():
        assert steps == list(range(len(steps))) and len(steps) >= 3, (key, steps)  # epochs 1-3 at least
