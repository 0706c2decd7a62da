"""One writer per output: a second process writing the same dataset, run, study or prediction output fails at
once, in one line naming the holder; the lock of a process that died is taken over; nothing is lost."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pixelcam.cli import main
from pixelcam.errors import StorageError
from pixelcam.storage.lock import exclusive, lock_path

HOLD = """
import sys, time
from pixelcam.storage.lock import exclusive
with exclusive(sys.argv[1], "output"):
    print("held", flush=True)
    time.sleep(300)
"""


@pytest.fixture
def holder(tmp_path: Path):
    """Start a process holding the lock of a target; yields a function taking the target."""
    procs = []

    def hold(target: Path) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
        )
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_second_writer_fails_at_once_naming_the_first(tmp_path: Path, holder):
    target = tmp_path / "out"
    proc = holder(target)
    start = time.monotonic()
    with pytest.raises(StorageError) as err, exclusive(target, "dataset"):
        pass
    assert time.monotonic() - start < 5
    msg = str(err.value)
    assert f"{target}: another process (pid {proc.pid} on " in msg and "is writing this dataset" in msg


def test_the_lock_of_a_killed_writer_is_taken_over(tmp_path: Path, holder):
    target = tmp_path / "out"
    proc = holder(target)
    proc.kill()
    proc.wait()
    with exclusive(target, "dataset"):  # the OS released it with the process
        assert lock_path(target).exists()
    assert not lock_path(target).exists()  # removed by its holder: nothing left in the user's directory
    with exclusive(target), exclusive(target):  # re-entrant within one process
        pass


def test_an_object_store_target_is_not_locked(tmp_path: Path):
    with exclusive("s3://bucket/prefix/out"):
        pass
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kind, argv",
    [
        ("dataset", lambda t: ["data", "synth", "--out", str(t / "ds"), "--per-class", "10", "--size", "32"]),
        ("training run", lambda t: ["train", "baseline", "--config", str(_config(t)), "--name", "r"]),
        ("study", lambda t: ["study", "run", str(_spec(t))]),
        ("prediction output", lambda t: _predict(t)),
    ],
)
def test_every_output_kind_has_one_writer(kind: str, argv, tmp_path: Path, holder, capsys):
    """The command fails in one line (exit 2) while another process writes its output; what is there stays."""
    args = argv(tmp_path)
    target = {
        "dataset": tmp_path / "ds",
        "training run": tmp_path / "runs" / "r",
        "study": tmp_path / "studies" / "t",
        "prediction output": tmp_path / "pred",
    }[kind]
    target.mkdir(parents=True)
    (target / "precious.txt").write_text("kept")
    proc = holder(target)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"pixelcam: error: {target}: another process (pid {proc.pid} on "), err
    assert err.endswith(f"is writing this {kind}; wait for it to finish or choose another name")
    assert "\n" not in err and (target / "precious.txt").read_text() == "kept"


def _config(tmp: Path) -> Path:
    (tmp / "c.yaml").write_text(
        f"method: cam\nbackbone: resnet10t\nsource: synth-lymph\ndata: {_data(tmp)}\nepochs: 1\n"
        f"storage: {tmp / 'runs'}\n"
    )
    return tmp / "c.yaml"


def _spec(tmp: Path) -> Path:
    (tmp / "s.yaml").write_text(
        f"name: t\ndata: {_data(tmp)}\nsources: [synth-lymph]\nmethods: [cam]\nstorage: {tmp / 'studies'}\n"
    )
    return tmp / "s.yaml"


def _data(tmp: Path) -> Path:
    from pixelcam.data.synth import SynthConfig, generate_synthetic

    out = tmp / "data"
    if not out.exists():
        config = SynthConfig(domains=["synth-lymph"], per_class=10, size=32, seed=1)
        generate_synthetic(out, config, workers=1)
    return out


def _predict(tmp: Path) -> list[str]:
    from pixelcam.models import create_wsol_model
    from pixelcam.runtime.checkpoint import save_checkpoint

    meta = {"method": "cam", "backbone": "resnet10t", "class_names": ["normal", "cancer"], "epoch": 0}
    meta.update(tau=0.5, metrics={}, resize=32, source="synth-lymph")
    save_checkpoint(tmp / "ck", create_wsol_model("cam", "resnet10t"), meta)
    (tmp / "s.tif").write_bytes(b"not read: the output is locked first")
    return [
        "predict",
        "--checkpoint",
        str(tmp / "ck"),
        "--slides",
        str(tmp / "s.tif"),
        "--out",
        str(tmp / "pred"),
    ]


def test_dataset_made_by_someone_else_during_the_write_is_never_removed(tmp_path: Path):
    from pixelcam.data.errors import DatasetError
    from pixelcam.data.writer import DatasetWriter

    out = tmp_path / "ds"
    with pytest.raises(DatasetError, match="appeared or changed while the dataset was written"):
        with DatasetWriter(out, required_splits=()) as w:
            w.add_domain("d", ["a", "b"])
            out.mkdir()
            (out / "mine.txt").write_text("user data")
    assert (out / "mine.txt").read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temporary, no lock file left
