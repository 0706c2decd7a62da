"""A real Ray cluster and a real MLflow tracking server on loopback: `ray start --head` (no CPUs: it holds the
jobs' drivers) with a worker node, and `mlflow server` (SQLite backend). Two studies, one after the other:

1. the smoke study through the `ray job submit` CLI, exactly as cluster/README.md shows it: awaited to
   SUCCEEDED, its runs and LoggedModels read back from the server, then its models registered on the server
   (`pixelcam models register`) and evaluated by `models:/NAME@ALIAS`;
2. a study on S3 data stored on S3 (the session's S3 protocol server; `--data s3://...`, `--storage s3://...`)
   through the JobSubmissionClient (cluster/submit.py, tailing the job's logs), whose trial loses its node
   mid-run (the worker node's raylet SIGKILLed): a new node joins, the study retries the trial
   (`resources.max_failures`) from its latest checkpoint in the bucket and completes, and the trial has one
   MLflow run with every epoch.

One cluster serves both (a cluster costs ~15 CPU-s to start), from when the test run begins (a scenario,
tests/shared.py: its two minutes, mostly waiting, overlap the other tests). Everything started here is
stopped by its process group id."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import yaml

from pixelcam.storage import Location
from tests.cluster.helpers import (
    BIN,
    agent_ports,
    free_ports,
    listening_hosts,
    stop_group,
    token_env,
    wait_for,
)
from tests.mlflow_server import start_server
from tests.shared import scenario, scenario_fixture

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SPEC = "studies/cluster-smoke.yaml"
S3_DATA = "s3://lab/datasets/synth"  # the session's dataset on its S3 server (`environment` reaches it)
EPOCHS = 5  # the node is lost once two epochs are logged: the rest continue from the checkpoint
NODE_LOSS_SPEC = """\
name: nodeloss
data: data/synth
sources: [synth-colon]
targets: [synth-colon]
methods: [cam]
pixelcam: false
backbone: resnet10t
budget: {{trials: 1, epochs: {epochs}, grace_period: 1}}
resources: {{workers: 1, cpus_per_worker: 1, max_failures: 2}}
train: {{resize: 64, crop: 56, batch_size: 8, lr: 0.01}}
"""


@dataclass
class Cluster:
    """A running test cluster: its clients' environment, addresses, and the nodes started for it."""

    env: dict[str, str]
    address: str  # the head's dashboard (job API)
    gcs: str  # the head's GCS address (nodes join it)
    uri: str  # the MLflow tracking server
    log: Path
    taken: tuple[int, ...]  # ports of the head and the server, never given to a node's agents
    procs: list[subprocess.Popen] = field(default_factory=list)
    worker: subprocess.Popen | None = None  # the worker node the trials run on (until it is lost)
    temp_dirs: list[str] = field(default_factory=list)

    def start_node(self, *args: str, log: Path | None = None) -> subprocess.Popen:
        """`ray start --block` with every port of the node given explicitly (tests/cluster/helpers.py); its
        output appended to `log` (default: the cluster's)."""
        with open(log or self.log, "a") as out:
            proc = subprocess.Popen(
                [str(BIN / "ray"), "start", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1",
                 *agent_ports(*self.taken), *args],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def start_until_started(self, args: Callable[[], tuple[str, ...]], log: Path) -> subprocess.Popen:
        """`start_node(*args(), log=log)` once its `ray start` says it started; started again, once (with
        `args()` again), when that process exits instead. On a loaded machine a raylet aborts when its
        dashboard agent misses the raylet's fixed wait for its ports ("timed out during startup",
        `NodeManager::WaitForDashboardAgentPorts`): seen on the node-loss check's replacement node in a
        fresh-clone run, whose study then waited for CPUs until the test's timeout. pixelcam's `init_ray`
        retries a local start the same way."""
        seen = _starts(log)  # a failed start prints none: the second waits for the same count
        proc = self.start_node(*args(), log=log)
        try:
            wait_for(lambda: _starts(log) > seen, "ray start", 240, proc, log)
            return proc
        except AssertionError:
            if proc.poll() is None:  # no start within 240 s: not the abort that a second start gets past
                raise
        stop_group(proc)  # what the failed start left behind
        proc = self.start_node(*args(), log=log)
        wait_for(lambda: _starts(log) > seen, "ray start", 240, proc, log)
        return proc

    def _worker_args(self) -> tuple[str, ...]:
        """A worker node with 2 CPUs and a Ray directory of its own, as on another machine: nodes sharing one
        would share its runtime_resources, and a node releasing a job's working_dir there would delete the
        directory the job's driver runs in on the head."""
        temp = tempfile.mkdtemp(prefix="raynode-")  # short: Ray's socket paths live under it
        self.temp_dirs.append(temp)
        return (f"--address={self.gcs}", "--num-cpus=2", f"--temp-dir={temp}")

    def join_worker_node(self) -> None:
        """The worker node (the head has no CPUs, so every trial and data task runs there), started."""
        log = self.log.with_name(f"node-{len(self.temp_dirs) + 1}.log")
        self.worker = self.start_until_started(self._worker_args, log)


def _starts(log: Path) -> int:
    """How many times `ray start`'s output in `log` says a node started (0 before the file exists)."""
    return log.read_text().count("Ray runtime started") if log.is_file() else 0


def cluster_cpus(gcs: str, env: dict) -> float:
    """The cluster's CPUs as a client connecting to it sees them (-1 while it cannot connect)."""
    code = f"import ray; ray.init(address={gcs!r}, logging_level='ERROR'); print(ray.cluster_resources())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return float(eval(out.stdout.strip().splitlines()[-1]).get("CPU", 0.0)) if out.returncode == 0 else -1.0


@contextlib.contextmanager
def running_cluster(tmp_path: Path, environment: dict[str, str]) -> Iterator[Cluster]:
    """A head without CPUs, a worker node with 2, an MLflow server; torn down by process group on the way
    out. `environment`: the session's, which reaches its S3 server (the nodes read and write the bucket)."""
    gcs, dash, mlf = free_ports(3)
    env = token_env(
        tmp_path,
        environment,
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{mlf}",
        # a lost node is declared dead after ~3 s instead of Ray's default ~30 s
        RAY_health_check_period_ms="1000",
        RAY_health_check_failure_threshold="3",
        RAY_health_check_timeout_ms="1000",
    )
    c = Cluster(env, f"http://127.0.0.1:{dash}", f"127.0.0.1:{gcs}", env["MLFLOW_TRACKING_URI"],
                tmp_path / "ray.log", (gcs, dash, mlf))  # fmt: skip
    try:
        head_args = ("--head", f"--port={gcs}", "--num-cpus=0", "--dashboard-host=127.0.0.1",
                     f"--dashboard-port={dash}")  # fmt: skip
        head = c.start_until_started(lambda: head_args, c.log)
        c.procs.append(start_server(tmp_path, mlf, tmp_path / "mlflow.log", env))
        # the head's dashboard answers (any HTTP status: it asks for the token) before a client process is
        # started: each `ray` client process costs ~2 CPU-s to start, an HTTP probe nothing
        wait_for(lambda: _answers(f"{c.address}/api/version"), "ray head", 240, head, c.log)
        c.join_worker_node()
        wait_for(lambda: cluster_cpus(c.gcs, env) == 2.0, "worker node's CPUs", 240, c.worker, c.log)
        # clients run as subprocesses, as a user's would: Ray reads RAY_AUTH_MODE once per process
        # the job API answers before the node's job agent has registered ("No available agent to submit
        # job, please try again later"): wait until a trivial job is accepted
        wait_for(
            lambda: subprocess.run(
                [str(BIN / "ray"), "job", "submit", "--address", c.address, "--no-wait", "--", "true"],
                env=env, capture_output=True, timeout=60,
            ).returncode == 0,
            "ray job agent", 240, head, c.log,
        )  # fmt: skip
        # secure defaults: both servers listen on loopback only
        assert listening_hosts(dash) == {"127.0.0.1"} and listening_hosts(mlf) == {"127.0.0.1"}
        yield c
    finally:
        for p in reversed(c.procs):
            stop_group(p)
        for temp in c.temp_dirs:
            shutil.rmtree(temp, ignore_errors=True)
        marker = Path(
            "/tmp/ray/ray_current_cluster"
        )  # a killed head leaves it; a later ray.init would follow
        if marker.is_file() and str(gcs) in marker.read_text():
            marker.unlink()
    for p in c.procs:
        assert not psutil.pid_exists(p.pid) or psutil.Process(p.pid).status() == psutil.STATUS_ZOMBIE


def _answers(url: str) -> bool:
    """The server at `url` answers HTTP, an error status included (`wait_for` polls again on what else
    `urlopen` raises: nothing listening yet)."""
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:  # e.g. 401 without the token: the server is up
        pass
    return True


def raylet_of(node: subprocess.Popen) -> psutil.Process:
    for p in psutil.Process(node.pid).children(recursive=True):
        if p.name() == "raylet":
            return p
    raise AssertionError("the worker node has no raylet process")


def _console_says(out: str, experiment: str) -> None:
    """What every study's console shows, here through a job's logs."""
    assert "PxAP on test splits" in out, out[-4000:]
    assert "MLflow: http://127.0.0.1:" in out and f"(experiment {experiment})" in out
    assert "/runs?workflowType=machine_learning" in out  # the runs table, not MLflow 3's GenAI overview
    # a step with nothing to do says why on its line, instead of an empty step
    assert "== step 2/6: seeds (skipped: the spec lists no seed besides the study's own (`seeds`))" in out


@scenario("tmp_path_factory", "synth_dir", "environment")
def cluster_studies(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, environment: dict) -> dict:
    """The cluster and both studies, from when the test run begins (about 2 minutes, much of it waiting on
    nodes, jobs and the server): every check that needs the cluster alive is made here (its AssertionError
    is the test's); returns both jobs' consoles."""
    from mlflow.tracking import MlflowClient

    tmp_path = tmp_path_factory.mktemp("cluster")
    with running_cluster(tmp_path, environment) as cluster:
        ml = MlflowClient(cluster.uri)
        smoke = _smoke_study_by_the_cli(cluster, ml, tmp_path, synth_dir)
        # the JobSubmissionClient (cluster/submit.py): a study on S3 whose trial loses its node
        lost = _study_survives_losing_the_node_its_trial_runs_on(cluster, ml, tmp_path, S3_DATA)
    return {"smoke": smoke, "node_lost": lost}


cluster_studies_fixture = scenario_fixture("cluster_studies")


def test_studies_submitted_to_a_local_cluster_one_losing_its_node(cluster_studies: dict):
    smoke, lost = cluster_studies["smoke"], cluster_studies["node_lost"]
    _console_says(smoke, "pixelcam-study-cluster-smoke")
    assert "2 selected model(s) logged to MLflow as LoggedModels" in smoke
    _console_says(lost, "pixelcam-study-nodeloss")
    assert "retried (resources.max_failures), continuing from its latest checkpoint" in lost, lost[-4000:]


def _smoke_study_by_the_cli(cluster: Cluster, ml, tmp_path: Path, synth_dir: Path) -> str:
    """The smoke study through the `ray job submit` CLI, exactly as cluster/README.md shows it (it follows
    the job to its end); its results on the shared storage and the server, then its models registered and
    evaluated by name. Returns the job's console."""
    env, address, uri = cluster.env, cluster.address, cluster.uri
    shared = tmp_path / "shared"  # the "shared storage" every node sees
    cli = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", address, "--submission-id", "smoke-cli",
         "--working-dir", str(ROOT),
         "--runtime-env-json", json.dumps({"env_vars": {"MLFLOW_TRACKING_URI": uri}}),
         "--", sys.executable, "-m", "pixelcam.cli", "study", "run", SPEC,
         "--data", str(synth_dir), "--storage", str(shared)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
    )  # fmt: skip
    out = cli.stdout
    assert cli.returncode == 0 and "Job 'smoke-cli' succeeded" in out, out[-4000:]
    status = subprocess.run(
        [str(BIN / "ray"), "job", "status", "smoke-cli", "--address", address], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert "'smoke-cli' succeeded" in status.stdout + status.stderr

    # the results on the shared storage, and in the tracking server
    assert (shared / "cluster-smoke" / "ood.json").is_file()
    assert (shared / "cluster-smoke" / "dashboard.html").is_file()
    exp = ml.get_experiment_by_name("pixelcam-study-cluster-smoke")
    (parent,) = ml.search_runs([exp.experiment_id], "tags.kind = 'study'")
    assert parent.info.status == "FINISHED"
    evals = ml.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.kind = 'evaluation'"
    )
    assert {r.data.tags["method"] for r in evals} == {"cam", "pixelcam-cam"}
    for r in evals:
        for tgt in ("synth-colon", "synth-lymph"):
            assert 0 <= r.data.metrics[f"pxap__synth-colon__to__{tgt}"] <= 100
            assert 0 <= r.data.metrics[f"cl__synth-colon__to__{tgt}"] <= 100
    arts = {a.path for a in ml.list_artifacts(parent.info.run_id)}
    assert {"ood.json", "dashboard"} <= arts  # artifacts went through the server (mlflow-artifacts:)
    # the study logged its selected models (cam, pixelcam-cam) as LoggedModels, ready to register
    logged = ml.search_logged_models([exp.experiment_id])
    assert len(logged) == 2 and all(str(m.status) == "READY" for m in logged)
    _registered_and_used_by_name(env, ml, shared / "cluster-smoke", synth_dir, tmp_path)
    return out


def _registered_and_used_by_name(env: dict, ml, study: Path, synth_dir: Path, tmp_path: Path) -> None:
    """`pixelcam models register STUDY --alias champion` on the tracking server: the study's LoggedModel per
    tuned model (linked to its training run: checkpoint, input example, params, test metrics) gets a version
    with the alias; registering again adds no version; `evaluate --model models:/NAME@champion` reads it."""
    env = {**env, "PIXELCAM_MODEL_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "pixelcam.cli", "models", "register", str(study), "--alias", "champion"]
    for _ in range(2):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
        for name in ("cluster-smoke-cam-synth-colon", "cluster-smoke-pixelcam-cam-synth-colon"):
            assert f"models:/{name}@champion  (version 1," in out.stdout, out.stdout
    state = json.loads((study / "state.json").read_text())
    ood = json.loads((study / "ood.json").read_text())
    rec = state["experiments"]["synth-colon__cam"]
    version = ml.get_model_version_by_alias("cluster-smoke-cam-synth-colon", "champion")
    assert version.run_id == rec["mlflow_run_id"]  # the UI links the version to its study's training run
    assert len(ml.search_model_versions("name = 'cluster-smoke-cam-synth-colon'")) == 1
    experiment = ml.get_experiment_by_name("pixelcam-study-cluster-smoke").experiment_id
    assert len(ml.search_logged_models([experiment])) == 2  # the study's own, none logged again
    model = ml.get_logged_model(version.source.removeprefix("models:/"))
    assert (
        model.source_run_id == rec["mlflow_run_id"] and model.tags["pixelcam.checkpoint"] == rec["checkpoint"]
    )
    assert model.params["method"] == "cam" and model.params["backbone"] == "resnet10t"
    files = {f.path for f in ml.list_logged_model_artifacts(model.model_id)}
    assert {"meta.json", "model.pt", "input_example.json"} <= files
    (row,) = [r for r in ood["rows"] if r["method"] == "cam" and r["source"] == "synth-colon"]
    cell = row["cells"]["pxap"]["synth-colon"]
    metrics = {m.key: m.value for m in model.metrics}
    assert metrics["test_pxap__synth-colon__to__synth-colon"] == pytest.approx(cell["mean"])
    report = tmp_path / "eval.json"
    champion = "models:/cluster-smoke-cam-synth-colon@champion"
    ev = subprocess.run(
        [sys.executable, "-m", "pixelcam.cli", "evaluate", "--model", champion,
         "--data", str(synth_dir), "--domains", "synth-colon", "--json", str(report)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert (tmp_path / "cache" / model.model_id / "meta.json").is_file()
    evaluated = json.loads(report.read_text())["results"]["synth-colon"]  # the study's figure, read back
    assert evaluated["pxap"] == pytest.approx(cell["mean"], abs=0.01)


def _study_survives_losing_the_node_its_trial_runs_on(cluster: Cluster, ml, tmp_path: Path, data: str) -> str:
    """The study is submitted through cluster/submit.py (JobSubmissionClient, tailing the job's logs); once
    its trial has logged two epochs on the worker node, that node's raylet is SIGKILLed (the trial's process
    goes with it) and another node joins."""
    stored = f"s3://lab/{tmp_path.name}/studies"
    spec = tmp_path / "nodeloss.yaml"  # on the storage every node shares (one machine), as an absolute path
    spec.write_text(NODE_LOSS_SPEC.format(epochs=EPOCHS))
    api = subprocess.Popen(
        [sys.executable, str(ROOT / "cluster" / "submit.py"), str(spec), "--address", cluster.address,
         "--python", sys.executable, "--data", data, "--storage", stored, "--wait"],
        env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 300
        while _epochs_logged(ml, "pixelcam-study-nodeloss") < 2:  # the trial is running on the worker node
            assert api.poll() is None, (
                "the study ended before its node was lost:\n" + api.stdout.read()[-4000:]
            )
            assert time.time() < deadline, "the trial logged no second epoch in 300 s"
            time.sleep(1)
        raylet_of(cluster.worker).kill()
        cluster.join_worker_node()  # another node joins
        out, _ = api.communicate(timeout=600)
    finally:
        if api.poll() is None:
            api.kill()
    (tmp_path / "nodeloss.log").write_text(out)
    assert api.returncode == 0 and ": SUCCEEDED" in out, out[-4000:]
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
    exp = ml.get_experiment_by_name("pixelcam-study-nodeloss")
    runs = ml.search_runs([exp.experiment_id], "tags.kind = 'trial'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    steps = {m.step for m in ml.get_metric_history(runs[0].info.run_id, "valpx_pxap")}
    assert steps == set(range(EPOCHS))
    return out


def _epochs_logged(ml, experiment: str) -> int:
    """Epochs the experiment's trial has logged on the tracking server so far (0 before it exists)."""
    exp = ml.get_experiment_by_name(experiment)
    runs = ml.search_runs([exp.experiment_id], "tags.kind = 'trial'") if exp else []
    return max((len(ml.get_metric_history(r.info.run_id, "valpx_pxap")) for r in runs), default=0)
