"""A dataset write cut short through the public CLI (`pixelcam data synth`, the writer every ingester uses):
SIGKILL leaves a temporary that the next write of the same dataset removes (its process is gone), SIGTERM
and Ctrl-C print one line (exit 143 / 130, no traceback) and leave no temporary, and an existing dataset
survives every interruption of its `--overwrite`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

OUT = "ds"


def start(root: Path, *extra: str) -> subprocess.Popen:
    cmd = ["pixelcam.cli", "data", "synth", "--out", str(root / OUT), "--per-class", "2000", "--size", "96"]
    return subprocess.Popen(
        [sys.executable, "-m", *cmd, "--workers", "1", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def temporaries(root: Path) -> list[Path]:
    return sorted(root.glob(f".{OUT}.tmp-*"))


def wait_for_temporary(proc: subprocess.Popen, root: Path) -> Path:
    deadline = time.time() + 60
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        found = [t for t in temporaries(root) if t.name.startswith(f".{OUT}.tmp-{proc.pid}-")]
        if found and any(found[0].rglob("*")):  # writing has begun
            return found[0]
        time.sleep(0.1)
    raise AssertionError("the write never started")


def test_interrupted_writes_leave_nothing_and_clean_up_after_a_kill(tmp_path: Path):
    killed = start(tmp_path)
    stale = wait_for_temporary(killed, tmp_path)
    killed.send_signal(signal.SIGKILL)  # no handler runs: the temporary stays behind
    killed.wait()
    assert stale.exists()

    for sig, rc, line in [
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
        (signal.SIGINT, 130, "interrupted (Ctrl-C)"),
    ]:
        proc = start(tmp_path)
        wait_for_temporary(proc, tmp_path)
        assert not stale.exists()  # the killed write's temporary: removed, its process being gone
        proc.send_signal(sig)
        err = proc.communicate(timeout=60)[1]
        assert proc.returncode == rc, err[-2000:]
        # progress lines (not a TTY), then one line: no traceback
        assert err.strip().splitlines()[-1] == f"pixelcam: {line}; nothing half-written was kept", err[-2000:]
        assert "Traceback" not in err
        assert temporaries(tmp_path) == [] and not (tmp_path / OUT).exists()

    done = subprocess.run(
        [sys.executable, "-m", "pixelcam.cli", "data", "synth", "--out", str(tmp_path / OUT), "--per-class",
         "12", "--size", "64", "--workers", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = (tmp_path / OUT / "manifest.json").read_text()
    proc = start(tmp_path, "--overwrite")  # an interrupted overwrite keeps the dataset it would replace
    wait_for_temporary(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.communicate(timeout=60)[0] is None and proc.returncode == 143
    assert (tmp_path / OUT / "manifest.json").read_text() == manifest
    assert json.loads(manifest)["domains"] and temporaries(tmp_path) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert os.listdir(tmp_path) == [OUT]


def test_a_killed_synth_leaves_no_worker_behind(tmp_path: Path):
    """SIGKILL, where no handler of the parent's runs: its rendering workers end with it."""
    import psutil

    cmd = ["pixelcam.cli", "data", "synth", "--out", str(tmp_path / OUT), "--per-class", "2000"]
    proc = subprocess.Popen([sys.executable, "-m", *cmd, "--workers", "2"], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(workers := psutil.Process(proc.pid).children()) < 2:
        assert time.time() < deadline and proc.poll() is None, "the workers never started"
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived their killed parent: {[p.pid for p in alive]}"
