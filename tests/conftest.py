"""Shared fixtures: a small synthetic dataset generated once per test process, and, once for the whole run
(every pytest-xdist worker shares them, `tests/shared.py`): the same dataset on an S3 protocol server on
loopback, models trained for the tests that need a trained model, and the tiny study (stored on that server)
the e2e study and dashboard tests read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# One OpenMP thread in every process of the run (this one, its scenarios' processes and their Ray workers,
# which inherit it): the tests share 2 cores with their scenarios, and an OpenMP team of 2 spinning on an
# oversubscribed core is slower than one thread by 2.4x beside two busy processes and 21x beside one
# (tests/models/test_methods.py's 1,100 CAM calls: 69 s vs 29 s, 413 s vs 20 s; alone 16 s vs 20 s).
# Set before torch is imported: its OpenMP runtime reads it once.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from pixelcam.data.synth import SynthConfig, generate_synthetic
from tests.shared import (
    FIRST,
    SCENARIOS,
    once,
    run_order,
    scenario,
    scenario_fixture,
    shutdown,
    start,
    start_s3_server,
)


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


@pytest.fixture(scope="session")
def small_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synth-lymph alone, 10 images per class at 32 px: the dataset of the hostile-input tables."""
    out = tmp_path_factory.mktemp("errs") / "ds"
    generate_synthetic(out, SynthConfig(domains=["synth-lymph"], per_class=10, size=32, seed=1), workers=1)
    return out


class Run:
    """A training run of the session's trained models: its selected checkpoint (URI) and epoch history."""

    def __init__(self, checkpoint: str, history: list[dict[str, float]]) -> None:
        self.checkpoint, self.history = checkpoint, history


@dataclass
class TrainedModels:
    """Models trained once per test run (in-process runs on a real Ray Data input, no MLflow) on a
    synth-colon dataset of 100 images per class at 64 px: a U-Net (with masks) and a CAM baseline."""

    data: Path
    unet: Run
    cam: Run


TRAIN_MODELS = """
import json, sys
from pathlib import Path
from tests.conftest import train_models
print(json.dumps(train_models(Path(sys.argv[1]))))
"""


def train_models(root: Path) -> dict[str, Any]:
    """Train the session's models under `root` (in-process runs on a local Ray of this process)."""
    from pixelcam.config import TrainConfig
    from pixelcam.train.runner import train

    data = root / "ds"
    generate_synthetic(data, SynthConfig(domains=["synth-colon"], per_class=100, size=64, seed=5), workers=1)
    out: dict[str, Any] = {"data": str(data)}
    for method in ("unet", "cam"):
        cfg = TrainConfig(
            method=method,
            backbone="resnet10t",
            data=str(data),
            source="synth-colon",
            resize=64,
            crop=64,
            epochs=4,
            batch_size=16,
            lr=0.02,
            num_workers=1,
            storage=str(root / "runs"),
            name=method,
        )
        res = train(cfg, mlflow=False)
        out[method] = {"checkpoint": res.checkpoint.uri, "history": res.history}
    return out


@scenario("tmp_path_factory", "environment", first=True)
def trained_models(tmp_path_factory: pytest.TempPathFactory, environment: dict[str, str]) -> dict[str, Any]:
    """The models, trained in a process of their own from when the run begins (about 35 s), once for all
    test processes."""

    def make(directory: Path) -> dict[str, Any]:
        root = Path(__file__).resolve().parents[1]
        cmd = [sys.executable, "-c", TRAIN_MODELS, str(directory)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=root, env=environment)
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads(res.stdout.strip().splitlines()[-1])

    return once(tmp_path_factory, "trained", make)


trained_models_fixture = scenario_fixture("trained_models")


@pytest.fixture(scope="session")
def trained(trained_models: dict[str, Any]) -> TrainedModels:
    """The run's trained U-Net and CAM baseline: for every test that needs *a* trained model rather than a
    training run of its own."""
    rec = trained_models
    return TrainedModels(Path(rec["data"]), Run(**rec["unet"]), Run(**rec["cam"]))


@scenario("tmp_path_factory", "synth_dir", "s3_server", first=True)
def tiny_study(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, s3_server: dict[str, str]) -> Any:
    """The e2e tiny study (stored on S3, killed, resumed from the bucket), run once for the study and
    dashboard tests (about 1.5 min, mostly waiting on its processes)."""
    from tests.tiny_study import TinyStudy, run_interrupted_and_resumed

    rec = once(
        tmp_path_factory,
        "tiny-study",
        lambda d: run_interrupted_and_resumed(d, synth_dir, s3_server).to_json(),
    )
    return TinyStudy.from_json(rec)


@pytest.fixture(scope="session", autouse=True)
def _early_scenarios(request: pytest.FixtureRequest) -> None:
    """Start the selected tests' slow scenarios now, in threads (`tests/shared.py`)."""
    wanted = [f for item in request.session.items for f in getattr(item, "fixturenames", ())]
    ordered = dict.fromkeys(f for f in wanted if f in SCENARIOS)  # in the order the tests ask for them
    for name in sorted(ordered, key=lambda f: f not in FIRST):  # stable: FIRST ones, then in that order
        start(name, request)


tiny_study_fixture = scenario_fixture("tiny_study")


@pytest.fixture(scope="session")
def environment(s3_server: dict[str, str]) -> dict[str, str]:
    """The environment for a scenario's processes (the S3 server's included), taken in pytest's thread: a
    scenario thread copying the live `os.environ` while a test's monkeypatch sets a variable would race it."""
    return dict(os.environ)


@pytest.fixture(scope="session")
def local_ray() -> Any:
    """One local Ray (2 CPUs) in this test process, for every in-process test that needs *a* Ray rather than
    its start (`tests/train/test_e2e.py`, `predict`, `train negev`: pixelcam's `init_ray` joins it, as a job
    on a cluster does). A local start costs ~12 CPU-s of Ray's own processes; the start itself is covered
    by the processes that start their own (the quickstart's CLI, the trained models, the signals runs, the
    probe)."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path) -> dict[str, str]:
    """One S3 protocol server on loopback (moto's server mode) for the whole test run, with the bucket `lab`
    holding the synthetic dataset at `datasets/synth`; returns the environment that reaches it, also set in
    this process (pyarrow's S3 client reads it)."""

    def start(directory: Path) -> dict[str, str]:
        import boto3
        import pyarrow.fs as pafs

        env = start_s3_server(directory)
        os.environ.update(env)
        boto3.client("s3").create_bucket(Bucket="lab")
        pafs.copy_files(str(synth_dir), "s3://lab/datasets/synth")
        return env

    env = once(tmp_path_factory, "s3-server", start)
    os.environ.update(env)
    return env


@pytest.fixture
def s3(s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str]]:
    """(URI of the synthetic dataset on the session's S3 server, the environment that reaches it). Set in
    this process too; pass the environment to subprocesses and Ray nodes."""
    for k, v in s3_server.items():
        monkeypatch.setenv(k, v)
    return "s3://lab/datasets/synth", s3_server


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One headless Chromium (WebDriver) for every browser test of the run: starting one costs ~9 CPU-s."""
    from tests.report.test_dashboard_browser import browser

    driver = browser(tmp_path_factory.mktemp("chromium") / "profile")
    yield driver
    driver.quit()


@pytest.fixture
def chrome_page(chromium: Any) -> Any:
    """The run's Chromium as a fresh page: blank, its console log read out (a test sees its own messages
    only), no cookies, a 1400 x 1000 window."""
    chromium.get("about:blank")
    chromium.get_log("browser")
    chromium.delete_all_cookies()
    chromium.set_window_size(1400, 1000)
    return chromium


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """End-to-end modules first, those reading a late scenario last (`tests/shared.py`, `run_order`)."""
    items[:] = run_order(items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No scenario thread outlives the session."""
    shutdown()
