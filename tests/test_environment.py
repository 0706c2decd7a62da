"""The environment fingerprint against independent sources: /proc/cpuinfo, torch, importlib.metadata, git."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import torch

from pixelcam.environment import describe, fingerprint, git_dirty


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
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    line = describe(env)
    assert env["cpu"] in line and f"torch {env['torch']}" in line and env["git_commit"][:10] in line
    assert describe({}).startswith("? on ?")  # a partial record still reads


def test_uncommitted_changes_are_recorded_and_said(tmp_path: Path):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    assert git_dirty(tmp_path) is None  # not a work tree
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    (tmp_path / "new.txt").write_text("untracked files do not count\n")
    assert git_dirty(tmp_path) is False
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_dirty(tmp_path) is True
    assert describe({"git_commit": "0123456789ab", "git_dirty": True}).endswith(
        "commit 0123456789 with uncommitted changes"
    )


def test_the_variables_that_select_cpu_kernels_are_recorded(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.delenv("MKL_CBWR", raising=False)
    env = fingerprint()
    assert env["numerics_env"].get("ONEDNN_MAX_CPU_ISA") == "AVX2" and "MKL_CBWR" not in env["numerics_env"]
    assert describe(env).endswith(", ONEDNN_MAX_CPU_ISA=AVX2")  # thread counts are fields of their own
