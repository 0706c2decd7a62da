#!/usr/bin/env python3
"""Submit a study to a Ray cluster as a Ray job, with the project source shipped as the job's working_dir.

    export RAY_ADDRESS=http://127.0.0.1:8265          # the head's dashboard (port-forwarded: `ray dashboard`)
    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000   # the tracking server every node can reach
    python cluster/submit.py studies/paper/table3-ood.yaml --data s3://bucket/histology \
        --storage /mnt/shared/runs --wait

What travels: the repository directory as `working_dir` (Ray honours .gitignore: no .venv, data, runs or
MLflow files are uploaded), so `python -m pixelcam.cli` on the cluster runs exactly this checkout. The
dependencies (torch, ray, timm, optuna, mlflow) are installed on the nodes (cluster/aws-gpu.yaml's setup
commands, or the image). Credentials never go in a file: MLflow, S3/GCS and the Ray token come from the
environment (MLFLOW_TRACKING_USERNAME/PASSWORD, AWS_*/instance roles, RAY_AUTH_TOKEN).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Environment forwarded to the job when set on the submitting machine (values are never written to disk).
FORWARDED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "AWS_DEFAULT_REGION",
    "GLOO_SOCKET_IFNAME",
)
QUIET_ENV = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}


def runtime_env(extra_env: dict[str, str] | None = None) -> dict:
    """The job's runtime_env: the checkout as working_dir and the forwarded environment."""
    env = dict(QUIET_ENV)
    env.update({k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)})
    env.update(extra_env or {})
    return {"working_dir": str(ROOT), "env_vars": env}


def entrypoint(spec: str, python: str = "python", data: str | None = None, storage: str | None = None) -> str:
    """The job's command line; the spec must exist in this checkout (it travels as the working_dir)."""
    if not (ROOT / spec).is_file():
        raise SystemExit(
            f"submit: {spec}: no such study spec in {ROOT} (paths are relative to the repository)"
        )
    parts = [python, "-m", "pixelcam.cli", "study", "run", spec]
    if data:
        parts += ["--data", data]
    if storage:
        parts += ["--storage", storage]
    return " ".join(parts)


def submit(
    spec: str,
    address: str | None = None,
    python: str = "python",
    data: str | None = None,
    storage: str | None = None,
    submission_id: str | None = None,
) -> str:
    """Submit the study; returns the submission id."""
    from ray.job_submission import JobSubmissionClient

    if not os.environ.get("MLFLOW_TRACKING_URI"):
        raise SystemExit("submit: set MLFLOW_TRACKING_URI to a tracking server every node can reach")
    client = JobSubmissionClient(address or os.environ.get("RAY_ADDRESS", "http://127.0.0.1:8265"))
    return client.submit_job(
        entrypoint=entrypoint(spec, python, data, storage),
        runtime_env=runtime_env(),
        submission_id=submission_id,
        metadata={"study": spec},
        entrypoint_num_cpus=0,
    )


def wait(
    submission_id: str,
    address: str | None = None,
    timeout: float = 7 * 24 * 3600,
    poll: float = 2.0,
    out=None,
) -> str:
    """Poll until the job ends, copying its new log lines to `out` when given; returns the final status
    (SUCCEEDED, FAILED or STOPPED)."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address or os.environ.get("RAY_ADDRESS", "http://127.0.0.1:8265"))
    deadline = time.time() + timeout
    printed = 0
    while time.time() < deadline:
        status = client.get_job_status(submission_id)  # read before the logs: no line is missed at the end
        if out is not None:
            logs = client.get_job_logs(submission_id)
            out.write(logs[printed:])
            out.flush()
            printed = len(logs)
        if status.is_terminal():
            return str(status.value)
        time.sleep(poll)
    raise TimeoutError(f"job {submission_id} still running after {timeout:.0f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec", help="study spec, relative to the repository (e.g. studies/cluster-smoke.yaml)")
    p.add_argument("--address", help="Ray dashboard address (default: $RAY_ADDRESS or http://127.0.0.1:8265)")
    p.add_argument("--data", help="dataset path on the nodes or URI (s3://, gs://)")
    p.add_argument("--storage", help="study storage: s3://bucket/prefix, or a path every node mounts")
    p.add_argument("--python", default="python", help="the nodes' Python interpreter (default: python)")
    p.add_argument("--wait", action="store_true", help="tail the job's logs until it ends")
    args = p.parse_args()
    sid = submit(args.spec, args.address, args.python, args.data, args.storage)
    print(f"submitted {sid}: ray job logs -f {sid} | ray job status {sid} | ray job stop {sid}")
    if not args.wait:
        return 0
    status = wait(sid, args.address, out=sys.stdout)
    print(f"job {sid}: {status}")
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
