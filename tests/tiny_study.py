"""The tiny study shared by the end-to-end tests: run on a real local Ray and a real SQLite MLflow store,
stored on an S3 protocol server on loopback (`--storage s3://...`: spec, state, Tune's and Train's
directories, checkpoints and results are written to the bucket, nothing to a local stage), its driver
interrupted (SIGINT, as Ctrl-C) in the trials of the second Tune experiment, resumed and SIGKILLed (a crash)
in them again, and finished by `pixelcam study resume s3://...` from what the bucket holds, as on a new
machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from pixelcam.storage import Location

SPEC = """\
name: tiny
data: {data}
sources: [synth-colon]
targets: [synth-colon, synth-lymph]
methods: [cam]
pixelcam: true
backbone: resnet10t
searcher: grid
search:
  lr: [1.0e-3, 3.0e-2]
  lam: [0.5]
  n: [3]
budget: {{trials: 2, epochs: 2, grace_period: 1}}
resources: {{workers: 1}}
train: {{resize: 64, crop: 56, batch_size: 8}}
stain_shift: {{method: reinhard, levels: 2, fit_images: 8}}
seeds: [0, 1]
storage: {storage}
"""


def cli(*args: str, env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pixelcam.cli", *args], env=env, text=True, **kw)


@dataclass
class TinyStudy:
    root: Path  # the working directory of both commands
    study_dir: Location  # the study, in the bucket
    stored: str  # its URI
    uri: str
    cam_trials_before_kill: set[str]
    resume_output: str
    resume_returncode: int
    interrupt_output: str = ""  # the interrupted `study run`: its console, exit code and state.json then
    interrupt_returncode: int | None = None
    interrupted_state: dict | None = None
    left_after_interrupt: int = 0  # processes of its group still alive 30 s after it exited

    def to_json(self) -> dict:
        return {
            "root": str(self.root),
            "study_dir": self.study_dir.uri,
            "stored": self.stored,
            "uri": self.uri,
            "cam_trials_before_kill": sorted(self.cam_trials_before_kill),
            "resume_output": self.resume_output,
            "resume_returncode": self.resume_returncode,
            "interrupt_output": self.interrupt_output,
            "interrupt_returncode": self.interrupt_returncode,
            "interrupted_state": self.interrupted_state,
            "left_after_interrupt": self.left_after_interrupt,
        }

    @classmethod
    def from_json(cls, rec: dict) -> TinyStudy:
        return cls(
            Path(rec["root"]),
            Location(rec["study_dir"]),
            rec["stored"],
            rec["uri"],
            set(rec["cam_trials_before_kill"]),
            rec["resume_output"],
            rec["resume_returncode"],
            rec["interrupt_output"],
            rec["interrupt_returncode"],
            rec["interrupted_state"],
            rec["left_after_interrupt"],
        )


def run_interrupted_and_resumed(root: Path, synth_dir: Path, s3_env: dict[str, str]) -> TinyStudy:
    spec = root / "tiny.yaml"
    storage = f"s3://lab/{root.parent.name}-{root.name}/studies"
    spec.write_text(SPEC.format(data=synth_dir, storage=storage))
    # the embedded default, as the README's main command uses it: no MLFLOW_TRACKING_URI, so the store is
    # ./mlflow.db of the working directory (Tune trials run elsewhere and must still log into it)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(s3_env)
    study_dir = Location(f"{storage}/tiny")
    with open(root / "run.log", "w") as log:
        proc = cli(
            "study",
            "run",
            str(spec),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=root,
        )
        deadline = time.time() + 400
        client = MlflowClient(uri)
        while time.time() < deadline and proc.poll() is None and not _pixelcam_trial_started(client):
            time.sleep(0.5)
        if proc.poll() is not None:
            raise AssertionError(
                "the study ended before it could be interrupted:\n" + (root / "run.log").read_text()[-3000:]
            )
        proc.send_signal(signal.SIGINT)  # Ctrl-C, in the PixelCAM experiment's trials
        proc.wait(timeout=300)
    left = wait_for_group(proc.pid)
    interrupted_state = (study_dir / "state.json").read_json()
    before = {
        r.data.tags["trial_id"]
        for r in client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            "tags.experiment_key = 'synth-colon__cam' and tags.kind = 'trial'",
        )
    }
    stored = f"{storage}/tiny"
    _killed_resume(root, stored, env, client)
    res = cli("study", "resume", stored, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=root)
    out, _ = res.communicate(timeout=600)
    (root / "resume.log").write_text(out)
    interrupted = (root / "run.log").read_text()
    return TinyStudy(
        root, study_dir, stored, uri, before, out, res.returncode, interrupted, proc.returncode,
        interrupted_state, left,
    )  # fmt: skip


def _killed_resume(root: Path, stored: str, env: dict, client: MlflowClient) -> None:
    """A first `study resume`, SIGKILLed with its local Ray (a crash, no state saved on the way out) once
    it has restored the PixelCAM experiment and logged an epoch; the next resume must finish from there."""
    with open(root / "killed-resume.log", "w") as log:
        proc = cli("study", "resume", stored, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root,
                   start_new_session=True)  # fmt: skip
        deadline = time.time() + 300
        while (
            time.time() < deadline
            and proc.poll() is None
            and "epoch " not in _tail(root / "killed-resume.log")
        ):
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    wait_for_group(proc.pid)


def _tail(log: Path) -> str:
    text = log.read_text()
    return text[text.find("pixelcam-cam] restoring") :] if "pixelcam-cam] restoring" in text else ""


def _pixelcam_trial_started(client: MlflowClient) -> bool:
    """A trial of the second experiment (PixelCAM on the tuned CAM) has started (its MLflow run exists)."""
    exps = [e.experiment_id for e in client.search_experiments()]
    if not exps:
        return False
    runs = client.search_runs(
        exps, "tags.experiment_key = 'synth-colon__pixelcam-cam' and tags.kind = 'trial'"
    )
    return bool(runs)


def wait_for_group(pgid: int, timeout: float = 30.0) -> int:
    """Wait until no process of the group is left (Ray's processes end once their driver is gone); those
    still alive after `timeout` are killed and counted."""
    import psutil

    deadline = time.time() + timeout
    while time.time() < deadline:
        if not [p for p in psutil.process_iter() if _pgid(p.pid) == pgid]:
            return 0
        time.sleep(0.5)
    alive = [p for p in psutil.process_iter() if _pgid(p.pid) == pgid]
    for p in alive:
        p.kill()
    return len(alive)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
