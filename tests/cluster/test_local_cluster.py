"""A real Ray cluster and a real MLflow tracking server on loopback: `ray start --head` and `mlflow server`
(SQLite backend), the smoke study submitted twice at once (the `ray job submit` CLI and the
JobSubmissionClient through cluster/submit.py), both awaited to SUCCEEDED, their runs read back from the
server; then one study's models registered on the server (`pixelcam models register`) and evaluated by
`models:/NAME@ALIAS`; everything started here is stopped by its process group id."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.cluster.helpers import (
    BIN,
    agent_ports,
    free_ports,
    listening_hosts,
    stop_group,
    token_env,
    wait_for,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SPEC = "studies/cluster-smoke.yaml"


@pytest.fixture
def cluster(tmp_path: Path):
    """(env for clients, dashboard address, MLflow URI); torn down by process group after the test."""
    gcs, dash, mlf = free_ports(3)
    # MLflow 3's server job runner (10 workers for GenAI jobs, never used here) off, as `pixelcam ui` has it
    env = token_env(
        tmp_path, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{mlf}", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"
    )
    procs: list[subprocess.Popen] = []
    ray_log, mlflow_log = tmp_path / "ray.log", tmp_path / "mlflow.log"
    try:
        with open(ray_log, "w") as log:
            head = subprocess.Popen(
                [str(BIN / "ray"), "start", "--head", "--block", f"--port={gcs}", "--num-cpus=4",
                 "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--disable-usage-stats",
                 *agent_ports(gcs, dash, mlf)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(head)
        with open(mlflow_log, "w") as log:
            server = subprocess.Popen(
                [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                 "--artifacts-destination", str(tmp_path / "mlartifacts"), "--host", "127.0.0.1",
                 "--port", str(mlf), "--workers", "1"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(server)
        address = f"http://127.0.0.1:{dash}"
        wait_for(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{mlf}/health", timeout=2).status == 200,
            "mlflow server", 240, server, mlflow_log,
        )  # fmt: skip
        # the head's dashboard answers (any HTTP status: it asks for the token) before a client process is
        # started: each `ray` client process costs ~2 CPU-s to start, an HTTP probe nothing
        wait_for(lambda: _answers(f"{address}/api/version"), "ray head", 240, head, ray_log)
        # clients run as subprocesses, as a user's would: Ray reads RAY_AUTH_MODE once per process
        # the job API answers before the node's job agent has registered ("No available agent to submit
        # job, please try again later"): wait until a trivial job is accepted
        wait_for(
            lambda: subprocess.run(
                [str(BIN / "ray"), "job", "submit", "--address", address, "--no-wait", "--", "true"],
                env=env, capture_output=True, timeout=60,
            ).returncode == 0,
            "ray job agent", 240, head, ray_log,
        )  # fmt: skip
        # secure defaults: both servers listen on loopback only
        assert listening_hosts(dash) == {"127.0.0.1"} and listening_hosts(mlf) == {"127.0.0.1"}
        yield env, address, env["MLFLOW_TRACKING_URI"]
    finally:
        for p in reversed(procs):
            stop_group(p)
        marker = Path(
            "/tmp/ray/ray_current_cluster"
        )  # a killed head leaves it; later ray.init() would follow it
        if marker.is_file() and str(gcs) in marker.read_text():
            marker.unlink()
    for p in procs:
        assert not psutil.pid_exists(p.pid) or psutil.Process(p.pid).status() == psutil.STATUS_ZOMBIE


def _answers(url: str) -> bool:
    """The server at `url` answers HTTP, an error status included (`wait_for` polls again on what else
    `urlopen` raises: nothing listening yet)."""
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:  # e.g. 401 without the token: the server is up
        pass
    return True


def test_study_submitted_to_a_local_cluster(cluster, tmp_path: Path, synth_dir: Path):
    from mlflow.tracking import MlflowClient

    env, address, uri = cluster
    shared = tmp_path / "shared"  # the "shared storage" every node sees
    # 1. the `ray job submit` CLI, exactly as cluster/README.md shows it (it follows the job to its end)
    cli = subprocess.Popen(
        [str(BIN / "ray"), "job", "submit", "--address", address, "--submission-id", "smoke-cli",
         "--working-dir", str(ROOT),
         "--runtime-env-json", json.dumps({"env_vars": {"MLFLOW_TRACKING_URI": uri}}),
         "--", sys.executable, "-m", "pixelcam.cli", "study", "run", SPEC,
         "--data", str(synth_dir), "--storage", str(shared / "cli")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    # 2. the JobSubmissionClient, through the project's helper (submit, then poll and tail until the end)
    api = subprocess.Popen(
        [sys.executable, str(ROOT / "cluster" / "submit.py"), SPEC, "--address", address,
         "--python", sys.executable, "--data", str(synth_dir), "--storage", str(shared / "api"), "--wait"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    cli_out, _ = cli.communicate(timeout=600)
    api_out, _ = api.communicate(timeout=600)
    assert cli.returncode == 0 and "Job 'smoke-cli' succeeded" in cli_out, cli_out[-4000:]
    assert api.returncode == 0 and ": SUCCEEDED" in api_out, api_out[-4000:]
    for out in (cli_out, api_out):
        assert "PxAP on test splits" in out
        assert "MLflow: http://127.0.0.1:" in out and "(experiment pixelcam-study-cluster-smoke)" in out
        assert "/runs?workflowType=machine_learning" in out  # the runs table, not MLflow 3's GenAI overview
        # a step with nothing to do says why on its line, instead of an empty step
        assert "== step 2/6: seeds (skipped: the spec lists no seed besides the study's own (`seeds`))" in out
    status = subprocess.run(
        [str(BIN / "ray"), "job", "status", "smoke-cli", "--address", address], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert "'smoke-cli' succeeded" in status.stdout + status.stderr

    # the results on the shared storage, and in the tracking server
    for d in ("cli", "api"):
        assert (shared / d / "cluster-smoke" / "ood.json").is_file()
        assert (shared / d / "cluster-smoke" / "dashboard.html").is_file()
    ml = MlflowClient(uri)
    exp = ml.get_experiment_by_name("pixelcam-study-cluster-smoke")
    parents = ml.search_runs([exp.experiment_id], "tags.kind = 'study'")
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    for parent in parents:
        evals = ml.search_runs(
            [exp.experiment_id],
            f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.kind = 'evaluation'",
        )
        assert {r.data.tags["method"] for r in evals} == {"cam", "pixelcam-cam"}
        for r in evals:
            for tgt in ("synth-colon", "synth-lymph"):
                assert 0 <= r.data.metrics[f"pxap__synth-colon__to__{tgt}"] <= 100
                assert 0 <= r.data.metrics[f"cl__synth-colon__to__{tgt}"] <= 100
        arts = {a.path for a in ml.list_artifacts(parent.info.run_id)}
        assert {"ood.json", "dashboard"} <= arts  # artifacts went through the server (mlflow-artifacts:)
    # each study logged its selected models (cam, pixelcam-cam) as LoggedModels, ready to register
    logged = ml.search_logged_models([exp.experiment_id])
    assert len(logged) == 4 and all(str(m.status) == "READY" for m in logged)
    assert all("2 selected model(s) logged to MLflow as LoggedModels" in out for out in (cli_out, api_out))
    _registered_and_used_by_name(env, ml, shared / "cli" / "cluster-smoke", synth_dir, tmp_path)


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
    assert len(ml.search_logged_models([experiment])) == 4  # the study's own, none logged again
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
