"""Checkpoints in MLflow's model registry: logged as MLflow 3 LoggedModels (the checkpoint directory as the
model's artifacts, its params and metrics linked, the training run as its source), registered under a name
with an alias, and `models:/NAME@ALIAS`, `models:/NAME/VERSION` or `models:/MODEL_ID` turned back into a
local checkpoint directory (downloaded once per model id: an alias that moves fetches the new model, a model
id never changes, so its copy never goes stale).

Public MLflow APIs only (`MlflowClient`'s logged-model and registry calls, `mlflow.artifacts`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelcam.errors import CheckpointError
from pixelcam.tracking import CHECKPOINT_TAG, client, tracking_uri

__all__ = [
    "MODEL_URI_PREFIX",
    "RegisteredModel",
    "download_model",
    "is_model_uri",
    "log_checkpoint_model",
    "logged_checkpoints",
    "model_cache",
    "register_model",
]

MODEL_URI_PREFIX = "models:/"
_NAME_AT_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)/?$")
_NAME_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)/?$")
_MODEL_ID = re.compile(r"^models:/(?P<id>m-[0-9a-f]+)/?$")


def is_model_uri(ref: object) -> bool:
    return str(ref).startswith(MODEL_URI_PREFIX)


def model_cache() -> Path:
    """Where registry models are downloaded (`PIXELCAM_MODEL_CACHE`, default `~/.cache/pixelcam/models`)."""
    default = Path.home() / ".cache" / "pixelcam" / "models"
    return Path(os.environ.get("PIXELCAM_MODEL_CACHE", default))


def model_id_of(uri: str) -> str:
    """The logged model a `models:/` URI names now (an alias is read from the registry at each call)."""
    from mlflow.exceptions import MlflowException

    c = client()
    try:
        if m := _MODEL_ID.match(uri):
            return m["id"]
        if m := _NAME_AT_ALIAS.match(uri):
            version = c.get_model_version_by_alias(m["name"], m["alias"])
        elif m := _NAME_VERSION.match(uri):
            version = c.get_model_version(m["name"], m["version"])
        else:
            raise CheckpointError(
                f"{uri}: expected models:/NAME@ALIAS, models:/NAME/VERSION or models:/MODEL_ID"
            )
    except MlflowException as exc:
        where = tracking_uri()
        raise CheckpointError(f"{uri}: not in the model registry at {where} ({exc.message})") from None
    model_id = version_model_id(version)
    if model_id is None:
        raise CheckpointError(f"{uri}: version {version.version} is not a logged model (registered by hand?)")
    return model_id


def version_model_id(version: Any) -> str | None:
    """The logged model a registry version holds: its `model_id`, or the id in its `models:/<id>` source
    (SQL stores of MLflow 3.17 return versions without `model_id`)."""
    if version.model_id:
        return version.model_id
    m = _MODEL_ID.match(version.source or "")
    return m["id"] if m else None


def download_model(uri: str) -> Path:
    """The local checkpoint directory of registry model `uri` (downloaded on first use, atomically)."""
    import mlflow.artifacts

    model_id = model_id_of(uri)
    target = model_cache() / model_id
    if (target / "meta.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model_id}-", dir=target.parent))
    try:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"{MODEL_URI_PREFIX}{model_id}", dst_path=str(tmp), tracking_uri=tracking_uri()
        )
        if not (tmp / "meta.json").is_file():
            raise CheckpointError(f"{uri}: logged model {model_id} holds no pixelcam checkpoint (meta.json)")
        try:
            tmp.rename(target)
        except OSError:  # another process put it there first: same model id, same files
            if not (target / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass(frozen=True)
class RegisteredModel:
    """A model version the registry holds, with the alias it was given."""

    name: str
    version: str
    alias: str
    model_id: str
    source_run_id: str | None

    @property
    def uri(self) -> str:
        return f"{MODEL_URI_PREFIX}{self.name}@{self.alias}"


def log_checkpoint_model(
    checkpoint: Path,
    *,
    name: str,
    experiment_id: str,
    checkpoint_uri: str,
    source_run_id: str | None,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    uri: str | None = None,
    known: Mapping[str, str] | None = None,
) -> str:
    """The id of the READY LoggedModel holding local checkpoint directory `checkpoint` (made once per
    `checkpoint_uri`: a second call finds it by its tag) in the tracking store `uri` (default: this
    process's); `known`: the experiment's `logged_checkpoints`, when the caller has listed them already."""
    known = logged_checkpoints(experiment_id, uri) if known is None else known
    if checkpoint_uri in known:
        return known[checkpoint_uri]
    c = client(uri)
    model = c.create_logged_model(
        experiment_id,
        name=name,
        source_run_id=source_run_id,
        params=dict(params),
        tags={**tags, CHECKPOINT_TAG: checkpoint_uri},
        model_type="pixelcam-checkpoint",
    )
    try:
        c.log_model_artifacts(model.model_id, str(checkpoint))
        if source_run_id:  # a logged model's metrics are logged on a run, linked to the model
            for key, value in metrics.items():
                c.log_metric(source_run_id, key, value, model_id=model.model_id)
    except BaseException:
        c.finalize_logged_model(model.model_id, "FAILED")
        raise
    c.finalize_logged_model(model.model_id, "READY")
    return model.model_id


def logged_checkpoints(experiment_id: str, uri: str | None = None) -> dict[str, str]:
    """{checkpoint URI: model id} of the experiment's READY logged models (every page of the search)."""
    c = client(uri)
    found, token = {}, None
    while True:
        page = c.search_logged_models([experiment_id], page_token=token)
        for model in page:
            if CHECKPOINT_TAG in model.tags and str(model.status) == "READY":
                found.setdefault(model.tags[CHECKPOINT_TAG], model.model_id)
        token = page.token
        if not token:
            return found


def register_model(model_id: str, name: str, alias: str, source_run_id: str | None) -> RegisteredModel:
    """Version `model_id` under registered model `name` (a new version unless the latest already is this
    model) and point `alias` at it."""
    from mlflow.exceptions import MlflowException

    c = client()
    try:
        c.create_registered_model(name, tags={"pixelcam": "true"})
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    same = [v for v in c.search_model_versions(f"name = '{name}'") if version_model_id(v) == model_id]
    if same:
        version = max(same, key=lambda v: int(v.version))
    else:
        version = c.create_model_version(
            name, source=f"{MODEL_URI_PREFIX}{model_id}", run_id=source_run_id, model_id=model_id
        )
    c.set_registered_model_alias(name, alias, version.version)
    return RegisteredModel(name, str(version.version), alias, model_id, source_run_id)
