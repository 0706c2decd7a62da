"""Shared fixtures: a small synthetic dataset generated once per test session."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path):
    """The e2e tiny study (killed and resumed), run once for the study and dashboard tests (~3 min)."""
    from tests.tiny_study import run_killed_and_resumed

    return run_killed_and_resumed(tmp_path_factory.mktemp("tiny-study"), synth_dir)
