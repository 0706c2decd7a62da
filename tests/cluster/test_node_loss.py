"""A real two-node Ray cluster on loopback (`ray start --head` without CPUs, a worker node with them), the
dataset and the study on an S3 protocol server on loopback (`--data s3://...`, read by Ray Data's tasks on the
nodes; `--storage s3://...`, written to the bucket by whichever node writes): a study whose trial runs on the
worker node loses that node mid-trial (its raylet SIGKILLed), a new node joins, and the study retries the
trial (`resources.max_failures`) from its latest checkpoint in the bucket and completes; the trial has one
MLflow run with every epoch, and the study state records the model once."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pixelcam.storage import Location
from tests.cluster.helpers import BIN, agent_ports, free_port, stop_group, token_env, wait_for
from tests.shared import scenario, scenario_fixture

pytestmark = pytest.mark.e2e

EPOCHS = 4  # the node is lost after epoch 2: two epochs left to continue from the checkpoint
SPEC = """\
name: nodeloss
data: {data}
sources: [synth-colon]
targets: [synth-colon]
methods: [cam]
pixelcam: false
backbone: resnet10t
budget: {{trials: 1, epochs: {epochs}, grace_period: 1}}
resources: {{workers: 1, cpus_per_worker: 1, max_failures: 2}}
train: {{resize: 64, crop: 56, batch_size: 8, lr: 0.01}}
storage: {storage}
"""


def start(args: list[str], env: dict, log: Path, gcs: int) -> subprocess.Popen:
    with open(log, "a") as out:
        return subprocess.Popen(
            [str(BIN / "ray"), "start", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1",
             *agent_ports(gcs), *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def cluster_cpus(address: str, env: dict) -> float:
    code = f"import ray; ray.init(address={address!r}, logging_level='ERROR'); print(ray.cluster_resources())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return float(eval(out.stdout.strip().splitlines()[-1]).get("CPU", 0.0)) if out.returncode == 0 else -1.0


def raylet_of(node: subprocess.Popen) -> psutil.Process:
    for p in psutil.Process(node.pid).children(recursive=True):
        if p.name() == "raylet":
            return p
    raise AssertionError("the worker node has no raylet process")


@scenario("tmp_path_factory", "environment")
def node_loss(tmp_path_factory: pytest.TempPathFactory, environment: dict) -> dict:
    """The scenario, run from when the test run begins (about a minute, much of it waiting on the nodes):
    every check that needs the cluster alive is made here; returns what the test checks afterwards."""
    tmp_path = tmp_path_factory.mktemp("nodeloss")
    data = "s3://lab/datasets/synth"  # the session's dataset on its S3 server (`environment` reaches it)
    gcs = free_port()
    address = f"127.0.0.1:{gcs}"
    env = token_env(
        tmp_path,
        environment,
        # a lost node is declared dead after ~3 s instead of Ray's default ~30 s
        RAY_health_check_period_ms="1000",
        RAY_health_check_failure_threshold="3",
        RAY_health_check_timeout_ms="1000",
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    stored = f"s3://lab/{tmp_path.name}/studies"
    log = tmp_path / "ray.log"
    nodes: list[subprocess.Popen] = []
    study = None
    try:
        # the head holds no CPUs, so every trial (and data task) runs on a worker node
        nodes.append(
            start(["--head", f"--port={gcs}", "--num-cpus=0", "--include-dashboard=false"], env, log, gcs)
        )
        wait_for(lambda: cluster_cpus(address, env) == 0.0, "ray head", 240, nodes[0], log)
        nodes.append(start([f"--address={address}", "--num-cpus=2"], env, log, gcs))
        wait_for(lambda: cluster_cpus(address, env) == 2.0, "worker node A", 240, nodes[1], log)

        spec = tmp_path / "nodeloss.yaml"
        spec.write_text(SPEC.format(data=data, storage=stored, epochs=EPOCHS))
        study = subprocess.Popen(
            [sys.executable, "-m", "pixelcam.cli", "study", "run", str(spec)],
            env={**env, "RAY_ADDRESS": address}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=tmp_path,
        )  # fmt: skip
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(x) for x in study.stdout] + [lines.put(None)], daemon=True
        ).start()
        seen: list[str] = []
        deadline = time.time() + 300
        while not any(f"epoch 2/{EPOCHS}" in x for x in seen):  # the trial is running on node A
            line = lines.get(timeout=max(1.0, deadline - time.time()))
            assert line is not None, "the study ended before its trial ran:\n" + "".join(seen[-40:])
            seen.append(line)
        raylet_of(nodes[1]).kill()  # node A is lost with the trial's process on it
        nodes.append(start([f"--address={address}", "--num-cpus=2"], env, log, gcs))  # node B joins
        rc = study.wait(timeout=600)
        while (line := lines.get(timeout=30)) is not None:
            seen.append(line)
        out = "".join(seen)
        (tmp_path / "study.log").write_text(out)
        assert rc == 0, out[-4000:]
        assert "retried (resources.max_failures), continuing from its latest checkpoint" in out, out[-4000:]

        return {"stored": stored, "uri": env["MLFLOW_TRACKING_URI"]}
    finally:
        if study is not None and study.poll() is None:
            study.kill()
        for node in reversed(nodes):
            stop_group(node)
        marker = Path(
            "/tmp/ray/ray_current_cluster"
        )  # a killed head leaves it; a later ray.init would follow
        if marker.is_file() and str(gcs) in marker.read_text():
            marker.unlink()


node_loss_fixture = scenario_fixture("node_loss")


def test_study_on_s3_data_survives_losing_the_node_its_trial_runs_on(node_loss: dict, s3: tuple[str, dict]):
    data, stored = s3[0], node_loss["stored"]
    study_dir = Location(f"{stored}/nodeloss")
    # the study state records the model once, with its checkpoint; evaluation ran on it
    state = (study_dir / "state.json").read_json()
    assert yaml.safe_load((study_dir / "spec.yaml").read_text())["data"] == data
    rec = state["experiments"]["synth-colon__cam"]
    assert rec["status"] == "ok" and (Location(rec["checkpoint"]) / "model.pt").is_file()
    assert rec["checkpoint"].startswith(f"{stored}/nodeloss/train/")
    assert set(state["evaluations"]) == {"synth-colon__cam"}
    trials = (study_dir / "train" / "synth-colon__cam").glob("trial-*")
    assert len(trials) == 1  # the retry continued the same Train run directory
    # one MLflow run for the trial, finished, with every epoch's metrics
    ml = MlflowClient(node_loss["uri"])
    exp = ml.get_experiment_by_name("pixelcam-study-nodeloss")
    runs = ml.search_runs([exp.experiment_id], "tags.kind = 'trial'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    steps = {m.step for m in ml.get_metric_history(runs[0].info.run_id, "valpx_pxap")}
    assert steps == set(range(EPOCHS))
