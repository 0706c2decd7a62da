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
# Variables that select the CPU code paths of torch's kernels (oneDNN's instruction set changes fp32 results:
# docs/results/reproducibility.md): recorded when set
NUMERICS_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_CBWR")


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
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numerics_env": {k: os.environ[k] for k in NUMERICS_ENV if k in os.environ},
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": _git_commit(),
        # tracked files changed since that commit: the figures did not come from the commit alone
        "git_dirty": git_dirty(Path(__file__).parent),
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
        + (" with uncommitted changes" if env.get("git_dirty") else "")
        + "".join(f", {k}={v}" for k, v in (env.get("numerics_env") or {}).items())
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


def _git(where: Path, *args: str) -> str | None:
    """git's output in the work tree holding `where` (None: not a work tree, or git is missing)."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=where, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _git_commit() -> str | None:
    return (_git(Path(__file__).parent, "rev-parse", "HEAD") or "").strip() or None


def git_dirty(where: Path) -> bool | None:
    """Whether the git work tree holding `where` has tracked files changed since its commit (None: not in
    a git work tree, or git is missing)."""
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status.strip())
