"""MLflow for training runs: the driver creates the experiment and the run; rank 0 logs into it by id.

Tracking URI: `MLFLOW_TRACKING_URI` when set, else a SQLite store `mlflow.db` in the working directory
(artifacts next to it in `mlartifacts/`). The run id is created before Ray starts so that every process logs
into the same run, a resumed run continues it, and no process races to create the database.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CHECKPOINT_TAG = "pixelcam.checkpoint"
RUN_DIR_TAG = "pixelcam.run_dir"


def tracking_uri() -> str:
    """The MLflow tracking URI this process uses (absolute, so Ray workers with another cwd agree)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _client(uri: str | None = None):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri or tracking_uri())


def ensure_experiment(name: str, uri: str | None = None) -> str:
    """Experiment id of `name`, created when missing (SQLite: artifacts in `mlartifacts/` beside the DB)."""
    uri = uri or tracking_uri()
    client = _client(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another process
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def flat_params(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as MLflow params (None -> 'null', nested mappings flattened with '.')."""
    out: dict[str, str] = {}
    for k, v in config.items():
        if isinstance(v, Mapping):
            out.update({f"{k}.{kk}": vv for kk, vv in flat_params(v).items()})
        else:
            out[k] = "null" if v is None else str(v)
    return out


def start_run(
    experiment_id: str,
    run_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, str],
    uri: str | None = None,
    parent_run_id: str | None = None,
) -> str:
    """Create a RUNNING run with tags and params; returns its id (the driver calls this once per run)."""
    from mlflow.entities import Param

    client = _client(uri)
    all_tags = dict(tags)
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    items = [Param(k, v[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=items[i : i + 100])
    return run.info.run_id


class RunLogger:
    """Logs metrics and artifacts into an existing run (used by rank 0 and by the driver)."""

    def __init__(self, run_id: str, uri: str | None = None) -> None:
        self.run_id = run_id
        self.client = _client(uri)

    def metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), ts, step or 0) for k, v in values.items()]
        )

    def logged_steps(self, key: str) -> set[int]:
        return {m.step for m in self.client.get_metric_history(self.run_id, key)}

    def image(self, array, artifact_path: str) -> None:
        """Save a uint8 RGB array as PNG at `artifact_path` (e.g. 'cam_overlays/epoch_003.png')."""
        from PIL import Image

        path = Path(artifact_path)
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / path.name
            Image.fromarray(array).save(f)
            self.client.log_artifact(
                self.run_id, str(f), str(path.parent) if str(path.parent) != "." else None
            )

    def text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def data(self, payload: bytes, artifact_file: str) -> None:
        """Store raw bytes (a PNG, an .npz, an HTML page) at `artifact_file`."""
        path = Path(artifact_file)
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / path.name
            f.write_bytes(payload)
            self.client.log_artifact(
                self.run_id, str(f), str(path.parent) if str(path.parent) != "." else None
            )

    def tags(self, values: Mapping[str, str]) -> None:
        for k, v in values.items():
            self.client.set_tag(self.run_id, k, v)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def checkpoint_of_run(run_id: str, uri: str | None = None) -> str | None:
    """The checkpoint path recorded on an MLflow run (tag `pixelcam.checkpoint`), or None."""
    try:
        run = _client(uri).get_run(run_id)
    except Exception:
        return None
    return run.data.tags.get(CHECKPOINT_TAG)
