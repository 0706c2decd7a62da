"""The cluster configs parse, carry what the launcher / KubeRay need, point at studies that exist, keep secure
defaults and hold no credentials."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
SECRET_WORDS = re.compile(
    r"(aws_secret|secret_access_key|password\s*:|api[_-]?key\s*:|BEGIN [A-Z ]*PRIVATE KEY)", re.I
)


def test_aws_launcher_config_validates_against_rays_schema():
    import importlib.resources
    import json

    import jsonschema

    # the schema the cluster launcher validates against, shipped in the ray package
    schema = json.loads((importlib.resources.files("ray.autoscaler") / "ray-schema.json").read_text())
    raw = yaml.safe_load((CLUSTER / "aws-gpu.yaml").read_text())
    jsonschema.validate(raw, schema)  # raises on a schema error
    with pytest.raises(jsonschema.ValidationError):  # the check is real
        jsonschema.validate({**raw, "max_workers": "many"}, schema)
    head = raw["available_node_types"][raw["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # CPU-only head that runs drivers, never training
    gpu = raw["available_node_types"]["gpu_worker"]
    assert (
        gpu["min_workers"] == 0
        and gpu["max_workers"] >= 1
        and gpu["node_config"]["InstanceType"].startswith("g")
    )
    assert any("pip install" in c and "constraints.txt" in c and "-e" in c for c in raw["setup_commands"])
    assert "ray:2.60.0" in raw["docker"]["image"] and "py311" in raw["docker"]["image"]
    start = " ".join(raw["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start  # reached through `ray dashboard` (SSH), never exposed


def test_rayjob_manifest_has_the_required_fields_and_names_an_existing_study():
    job = yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob" and job["metadata"]["name"]
    spec = job["spec"]
    args = shlex.split(spec["entrypoint"])
    assert args[:4] == ["python", "-m", "pixelcam.cli", "study"] and args[4] == "run"
    assert (ROOT / args[5]).is_file(), f"entrypoint names {args[5]}, which is not in studies/"
    from pixelcam.study.spec import load_spec

    load_spec(ROOT / args[5])
    env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert env["working_dir"] == "/home/ray/pixelcam"  # where cluster/Dockerfile installs the checkout
    rc = spec["rayClusterSpec"]
    assert rc["rayVersion"] == "2.60.0" and rc["authOptions"] == {"mode": "token"}
    head = rc["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    workers = rc["workerGroupSpecs"][0]
    limits = workers["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1" and workers["maxReplicas"] >= 1
    for c in [head["template"]["spec"]["containers"][0], workers["template"]["spec"]["containers"][0]]:
        assert {"secretRef": {"name": "pixelcam-mlflow"}} in c["envFrom"]  # MLflow settings from a Secret
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    assert "FROM rayproject/ray:2.60.0-py311-gpu" in dockerfile and "WORKDIR /home/ray/pixelcam" in dockerfile


@pytest.mark.parametrize("name", ["aws-gpu.yaml", "rayjob.yaml", "Dockerfile", "submit.py", "README.md"])
def test_no_credentials_in_cluster_files(name: str):
    text = (CLUSTER / name).read_text()
    assert not SECRET_WORDS.search(text), SECRET_WORDS.search(text)
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)  # an AWS access key id


def test_submit_helper_builds_the_job(monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("pixelcam_submit", CLUSTER / "submit.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-written-anywhere")
    env = mod.runtime_env()
    assert (
        env["working_dir"] == str(ROOT) and env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    )
    assert env["env_vars"]["MLFLOW_TRACKING_PASSWORD"] == "not-written-anywhere"  # forwarded, never stored
    cmd = mod.entrypoint("studies/cluster-smoke.yaml", "/opt/py", "s3://b/ds", "/mnt/shared")
    expected = "/opt/py -m pixelcam.cli study run studies/cluster-smoke.yaml"
    assert cmd == f"{expected} --data s3://b/ds --storage /mnt/shared"
    with pytest.raises(SystemExit, match="no such study spec"):
        mod.entrypoint("studies/nope.yaml")
