"""Shared fixtures: a small synthetic dataset generated once per test session, the same dataset on an S3
protocol server on loopback, models trained once per session for the tests that need a trained model, and
the tiny study (stored on that server) the e2e study and dashboard tests read."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pixelcam.data.synth import SynthConfig, generate_synthetic


@pytest.fixture(autouse=True)
def _mlflow_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's MLflow records out of the working tree (one SQLite store per test session)."""
    root = tmp_path_factory.getbasetemp() / "mlflow"
    root.mkdir(exist_ok=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both synthetic domains, 12 images per class, 64 px (about 1 s)."""
    out = tmp_path_factory.mktemp("synth") / "ds"
    generate_synthetic(out, SynthConfig(per_class=12, size=64, seed=3), workers=1)
    return out


@dataclass
class TrainedModels:
    """Models trained once per test session (in-process runs on a real Ray Data input, no MLflow) on a
    synth-colon dataset of 100 images per class at 64 px: a U-Net (with masks) and a CAM baseline."""

    data: Path
    unet: Any  # TrainResult
    cam: Any


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModels:
    """The session's trained U-Net and CAM baseline (about 35 s): for every test that needs *a* trained
    model rather than a training run of its own."""
    import ray

    from pixelcam.config import TrainConfig
    from pixelcam.train.runner import train

    root = tmp_path_factory.mktemp("trained")
    data = root / "ds"
    generate_synthetic(data, SynthConfig(domains=["synth-colon"], per_class=100, size=64, seed=5), workers=1)
    runs = {}
    try:
        for method in ("unet", "cam"):
            cfg = TrainConfig(
                method=method,
                backbone="resnet10t",
                data=str(data),
                source="synth-colon",
                resize=64,
                crop=64,
                epochs=6,
                batch_size=16,
                lr=0.02,
                num_workers=1,
                storage=str(root / "runs"),
                name=method,
            )
            runs[method] = train(cfg, mlflow=False)
    finally:
        ray.shutdown()  # later tests start their own Ray in this process
    return TrainedModels(data, runs["unet"], runs["cam"])


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, s3_server: dict[str, str]):
    """The e2e tiny study (stored on S3, killed, resumed from the bucket), run once for the study and
    dashboard tests (~3 min)."""
    from tests.tiny_study import run_killed_and_resumed

    return run_killed_and_resumed(tmp_path_factory.mktemp("tiny-study"), synth_dir, s3_server)


@pytest.fixture(scope="session")
def s3_server(synth_dir: Path) -> Iterator[dict[str, str]]:
    """An S3 protocol server on loopback (moto's server mode) for the test session, with the bucket `lab`
    holding the synthetic dataset at `datasets/synth`; returns the environment that reaches it
    (AWS_ENDPOINT_URL, as a MinIO or Ceph user sets it)."""
    import os

    import boto3
    import pyarrow.fs as pafs
    from moto import server as moto_server  # moto[server]: a test dependency

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # pyarrow's S3 client reads them in this process too
    try:
        boto3.client("s3").create_bucket(Bucket="lab")
        pafs.copy_files(str(synth_dir), "s3://lab/datasets/synth")
        yield env
    finally:
        server.stop()
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture
def s3(s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str]]:
    """(URI of the synthetic dataset on the session's S3 server, the environment that reaches it). Set in
    this process too; pass the environment to subprocesses and Ray nodes."""
    for k, v in s3_server.items():
        monkeypatch.setenv(k, v)
    return "s3://lab/datasets/synth", s3_server
