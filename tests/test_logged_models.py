"""Checkpoints in MLflow's model registry (`pixelcam.logged_models`) on a real MLflow store (SQLite): logged
once per checkpoint, a version per model, an alias that moves, `models:/` URIs downloaded once per model id;
bad URIs and unknown names refused in one line. The study command and `evaluate --model` run against a real
MLflow server in tests/cluster/test_local_cluster.py; `predict --model` in tests/evaluation/slides."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pixelcam.errors import CheckpointError
from pixelcam.logged_models import download_model, is_model_uri, log_checkpoint_model, register_model
from pixelcam.runtime.checkpoint import resolve_checkpoint_dir, resolve_pseudo_label_source
from pixelcam.tracking import ensure_experiment, tracking_uri


def _checkpoint(directory: Path, tag: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "meta.json").write_text(json.dumps({"method": "cam", "tag": tag}))
    (directory / "model.pt").write_bytes(tag.encode() * 100)
    return directory


def _log(checkpoint: Path, experiment_id: str) -> str:
    return log_checkpoint_model(
        checkpoint,
        name="m",
        experiment_id=experiment_id,
        checkpoint_uri=str(checkpoint),
        source_run_id=None,
        params={"lr": "0.01"},
        metrics={},
        tags={"method": "cam"},
    )


def test_log_register_move_the_alias_and_download_once_per_model(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PIXELCAM_MODEL_CACHE", str(tmp_path / "cache"))
    exp = ensure_experiment("registry-test")
    first = _log(_checkpoint(tmp_path / "a", "a"), exp)
    assert _log(tmp_path / "a", exp) == first  # the same checkpoint is one logged model
    client = MlflowClient(tracking_uri())
    logged = client.get_logged_model(first)
    assert logged.params == {"lr": "0.01"} and logged.tags["pixelcam.checkpoint"] == str(tmp_path / "a")
    assert str(logged.status) == "READY"

    v1 = register_model(first, "reg", "champion", None)
    assert (v1.version, v1.uri) == ("1", "models:/reg@champion")
    assert register_model(first, "reg", "champion", None).version == "1"  # no second version of it
    local = download_model("models:/reg@champion")
    assert local == tmp_path / "cache" / first
    assert (local / "model.pt").read_bytes() == b"a" * 100 and json.loads((local / "meta.json").read_text())
    assert resolve_checkpoint_dir("models:/reg/1").uri == str(local)

    second = _log(_checkpoint(tmp_path / "b", "b"), exp)
    assert register_model(second, "reg", "champion", None).version == "2"  # the alias moves to it
    moved = resolve_pseudo_label_source("models:/reg@champion")
    assert moved.uri == str(tmp_path / "cache" / second) and (local / "model.pt").is_file()
    assert client.get_model_version_by_alias("reg", "champion").source == f"models:/{second}"
    assert download_model(f"models:/{first}") == local  # by model id


def test_bad_and_unknown_model_uris_are_one_line(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PIXELCAM_MODEL_CACHE", str(tmp_path / "cache"))
    assert is_model_uri("models:/a@b") and not is_model_uri("runs/a")
    with pytest.raises(
        CheckpointError, match=r"^models:/a: expected models:/NAME@ALIAS, models:/NAME/VERSION"
    ):
        download_model("models:/a")
    with pytest.raises(
        CheckpointError, match=r"^models:/nope@champion: not in the model registry at sqlite:"
    ):
        download_model("models:/nope@champion")
    assert not (tmp_path / "cache").exists()
