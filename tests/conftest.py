"""Shared fixtures: a small synthetic dataset generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelcam.data.synth import SynthConfig, generate_synthetic


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both synthetic domains, 12 images per class, 64 px (about 1 s)."""
    out = tmp_path_factory.mktemp("synth") / "ds"
    generate_synthetic(out, SynthConfig(per_class=12, size=64, seed=3), workers=1)
    return out
