"""Experiment tracking (MLflow): one client, one `start_run(kind=...)` for every run type, and the names that
cross module boundaries (run kinds, metric names) built and parsed here only.

Tracking URI: `MLFLOW_TRACKING_URI` when set, else a SQLite store `mlflow.db` in the working directory
(artifacts next to it in `mlartifacts/`). The driver creates every run before Ray starts, so all processes log
into the same run by id, a resumed run continues it, and no process races to create the database.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

CHECKPOINT_TAG = "pixelcam.checkpoint"
RUN_DIR_TAG = "pixelcam.run_dir"
KIND_TAG = "kind"
PARENT_TAG = "mlflow.parentRunId"
# MLflow 3's UI opens an experiment on its GenAI/traces overview unless the experiment says it holds model
# training runs; this tag (the UI's "custom model development" kind) opens the training runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


class RunKind:
    """Values of the `kind` tag: what produced a run (filter with `tags.kind = '...'`)."""

    STUDY = "study"  # a study's parent run
    TRIAL = "trial"  # one Tune trial's training run (child of the study)
    TRAIN = "train"  # a training run started with `pixelcam train`
    EVALUATION = "evaluation"  # a selected model on every target's test split (child of the study)
    STAIN_SWEEP = "stain_sweep"  # a selected model under stain-shift levels (child of the study)
    SEED = "seed"  # a selected configuration retrained with another seed (child of the study)
    INFERENCE = "inference"  # a model applied to whole slides (`pixelcam predict`)
    ALL = (STUDY, TRIAL, TRAIN, EVALUATION, STAIN_SWEEP, SEED, INFERENCE)


class PairMetric(NamedTuple):
    """A metric of one source -> target pairing, optionally of one model label (parent-run summaries)."""

    metric: str
    source: str
    target: str
    model: str | None = None


_PAIR_SEP, _TO = "__", "__to__"


def pair_metric(metric: str, source: str, target: str, model: str | None = None) -> str:
    """`pxap__<source>__to__<target>` (or `<model>__pxap__...`): the MLflow key of a pairing's metric."""
    name = f"{metric}{_PAIR_SEP}{source}{_TO}{target}"
    return f"{model}{_PAIR_SEP}{name}" if model else name


def parse_pair_metric(name: str, metrics: tuple[str, ...] | None = None) -> PairMetric | None:
    """Inverse of `pair_metric` (domains and labels may contain `-` and `.` but not `__`); None when `name`
    is not a pairing metric, or its metric is not one of `metrics`."""
    head, sep, target = name.rpartition(_TO)
    if not sep:
        return None
    parts = head.split(_PAIR_SEP)
    if len(parts) == 2:
        out = PairMetric(parts[0], parts[1], target)
    elif len(parts) == 3:
        out = PairMetric(parts[1], parts[2], target, model=parts[0])
    else:
        return None
    return out if metrics is None or out.metric in metrics else None


def slide_metric(metric: str, slide: str) -> str:
    """`<metric>__slide__<name>`: the MLflow key of one slide's metric in an inference run."""
    return f"{metric}{_PAIR_SEP}slide{_PAIR_SEP}{slide}"


def tracking_uri() -> str:
    """The MLflow tracking URI this process uses (absolute, so Ray workers with another cwd agree)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def client(uri: str | None = None):
    """An `MlflowClient` on `uri` (default: `tracking_uri()`)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri or tracking_uri())


def ensure_experiment(name: str, uri: str | None = None) -> str:
    """Experiment id of `name`, created when missing (SQLite: artifacts in `mlartifacts/` beside the DB) and
    marked as a model-training experiment so that MLflow's UI opens it on the runs table."""
    from mlflow.exceptions import MlflowException

    uri = uri or tracking_uri()
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is None:
        location = None
        if uri.startswith("sqlite:///"):
            location = (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
        try:  # the kind tag is set with the experiment, atomically
            return c.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except MlflowException:  # created concurrently by another process (two jobs of one study at once)
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # an experiment made before the tag existed
        try:
            c.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        except MlflowException:  # set concurrently: SQL stores insert, the second writer gets a UNIQUE error
            if c.get_experiment(exp.experiment_id).tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                raise
    return exp.experiment_id


def runs_url(base: str, experiment_id: str) -> str:
    """The MLflow UI page of an experiment's runs table. MLflow 3.17's UI ignores `mlflow.experimentKind` and
    opens every experiment on its GenAI overview unless the page says `workflowType=machine_learning` (or
    the user picked "Model training" in its sidebar, which the browser remembers)."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


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
    kind: str,
    run_name: str,
    *,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    uri: str | None = None,
) -> RunLogger:
    """Create a RUNNING run of `kind` (a `RunKind` value) with tags and params and return its logger.

    The run goes into `experiment` (a name, created when missing) or, for a child run, into its parent's
    experiment; the driver calls this once per run and hands the id to the processes that log into it.
    """
    from mlflow.entities import Param

    if kind not in RunKind.ALL:
        raise ValueError(f"unknown run kind {kind!r}; expected one of {RunKind.ALL}")
    uri = uri or tracking_uri()
    c = client(uri)
    if experiment is not None:
        exp_id = ensure_experiment(experiment, uri)
    elif parent_run_id:
        exp_id = c.get_run(parent_run_id).info.experiment_id
    else:
        raise ValueError("start_run needs an experiment name or a parent run")
    all_tags = {**(tags or {}), KIND_TAG: kind}
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    run = c.create_run(exp_id, run_name=run_name, tags=all_tags)
    items = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
    for i in range(0, len(items), 100):
        c.log_batch(run.info.run_id, params=items[i : i + 100])
    return RunLogger(run.info.run_id, uri)


def child_runs(parent_run_id: str, uri: str | None = None, status: str | None = None) -> list[Any]:
    """Every run whose parent is `parent_run_id` (optionally only those with MLflow `status`)."""
    c = client(uri)
    exp = c.get_run(parent_run_id).info.experiment_id
    query = f"tags.{PARENT_TAG} = '{parent_run_id}'"
    if status:
        query += f" and attributes.status = '{status}'"
    return c.search_runs([exp], filter_string=query, max_results=5000)


class RunLogger:
    """Logs metrics, tags and artifacts into an existing run (used by rank 0 and by the driver)."""

    def __init__(self, run_id: str, uri: str | None = None) -> None:
        self.run_id = run_id
        self.uri = uri or tracking_uri()
        self.client = client(self.uri)

    def metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), ts, step or 0) for k, v in values.items()]
        )

    def logged_steps(self, key: str) -> set[int]:
        return {m.step for m in self.client.get_metric_history(self.run_id, key)}

    def image(self, array, artifact_path: str) -> None:
        """Save a uint8 RGB array as PNG at `artifact_path` (e.g. 'cam_overlays/epoch_003.png')."""
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="PNG")
        self.data(buf.getvalue(), artifact_path)

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

    def status(self) -> str:
        return self.client.get_run(self.run_id).info.status

    def reopen(self) -> None:
        """Mark the run RUNNING again (a resumed run or study continues its run)."""
        self.client.update_run(self.run_id, status="RUNNING")

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def checkpoint_of_run(run_id: str, uri: str | None = None) -> str | None:
    """The checkpoint path recorded on an MLflow run (tag `pixelcam.checkpoint`), or None."""
    from mlflow.exceptions import MlflowException

    try:
        run = client(uri).get_run(run_id)
    except MlflowException:  # no such run (or not a run id at all)
        return None
    return run.data.tags.get(CHECKPOINT_TAG)
