"""The environment fingerprint against independent sources: /proc/cpuinfo, torch, importlib.metadata, git."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import torch

from pixelcam.environment import describe, fingerprint


def test_fingerprint_names_the_machine_libraries_and_commit():
    env = fingerprint()
    cpuinfo = Path("/proc/cpuinfo").read_text()
    assert env["cpu"] in cpuinfo and all(f in cpuinfo.split() for f in env["cpu_flags"])
    assert env["torch_threads"] == torch.get_num_threads() and env["torch"] == metadata.version("torch")
    assert env["ray"] == metadata.version("ray") and env["mlflow"] == metadata.version("mlflow")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    assert env["git_commit"] == head.stdout.strip()
    line = describe(env)
    assert env["cpu"] in line and f"torch {env['torch']}" in line and env["git_commit"][:10] in line
    assert describe({}).startswith("? on ?")  # a partial record still reads
