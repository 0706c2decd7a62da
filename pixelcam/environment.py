"""The environment a figure came from: recorded with every study (`environment.json`, the MLflow parent run)
and printed with every generated results table, so a number can be traced to the machine, libraries and
settings that produced it. Same machine, same seed, same numbers (tested); across machines of one kind the
CPU's kernels may differ, which the fingerprint shows."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "ray", "mlflow", "optuna", "numpy", "pyarrow", "timm", "pillow", "scipy")


def fingerprint() -> dict[str, Any]:
    """CPU model and flags, thread counts, library versions, determinism settings, the git commit."""
    import torch

    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": _git_commit(),
        "pixelcam": _version("pixelcam"),
    }
    out.update({name: _version(name) for name in LIBRARIES})
    return out


def describe(env: dict[str, Any]) -> str:
    """One line of a recorded fingerprint: where, on what and with which libraries a figure was measured."""
    return (
        f"{env.get('date', '?')} on {env.get('cpu', '?')} ({env.get('cpus', '?')} CPUs, "
        f"{env.get('torch_threads', '?')} torch threads), torch {env.get('torch', '?')}, "
        f"ray {env.get('ray', '?')}, commit {str(env.get('git_commit', '?'))[:10]}"
    )


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _cpu_model() -> str:
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    """The vector-instruction flags that pick torch's CPU kernels (avx2, avx512*, amx*, ...)."""
    for line in _cpuinfo():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            return sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))
    return []


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
