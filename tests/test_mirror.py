"""The stage <-> bucket mirror of studies on object storage, against a real S3 protocol server on loopback
(moto's server mode): paths map both ways, pushes are incremental and skip temporaries, pulls fetch what the
stage lacks, pruning reaches the bucket, and unusable locations fail in one line."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from pixelcam.errors import StorageError
from pixelcam.mirror import WEIGHT_FILES, check_uri, location, pull, push, remote_exists, stage_of, uri_of


@pytest.fixture
def stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PIXELCAM_STAGE", str(tmp_path / "stage"))
    return tmp_path / "stage"


def keys(prefix: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    out = {}
    for obj in s3.list_objects_v2(Bucket="lab", Prefix=prefix).get("Contents", []):
        if obj["Key"].endswith("/"):  # pyarrow's directory markers
            continue
        out[obj["Key"][len(prefix) :]] = s3.get_object(Bucket="lab", Key=obj["Key"])["Body"].read()
    return out


def test_paths_map_both_ways(stage: Path):
    d = stage_of("s3://lab/studies/x")
    assert d == stage.resolve() / "s3" / "lab" / "studies" / "x"
    assert uri_of(d / "state.json") == "s3://lab/studies/x/state.json"
    assert location(d) == "s3://lab/studies/x" and location("/elsewhere/x") == "/elsewhere/x"
    assert uri_of("/elsewhere/x") is None and uri_of(stage / "s3") is None
    for bad in ("s3://", "s3://lab/../etc", "no-scheme"):
        with pytest.raises(StorageError, match="expected scheme://bucket/path"):
            stage_of(bad)


def test_push_and_pull_mirror_a_run_directory(s3, stage: Path, tmp_path: Path):
    run = stage_of("s3://lab/mirror/run")
    (run / "epoch_000").mkdir(parents=True)
    (run / "epoch_000" / "model.pt").write_bytes(b"w" * 1000)
    (run / "epoch_000" / "meta.json").write_text('{"epoch": 0}')
    (run / "pixelcam_run.json").write_text("{}")
    (run / ".epoch_001.tmp-123").mkdir()  # a checkpoint being written: never mirrored
    (run / ".epoch_001.tmp-123" / "model.pt").write_bytes(b"partial")
    assert push(run) == 3
    assert keys("mirror/run/") == {
        "epoch_000/model.pt": b"w" * 1000,
        "epoch_000/meta.json": b'{"epoch": 0}',
        "pixelcam_run.json": b"{}",
    }
    assert push(run) == 0  # nothing changed since
    (run / "epoch_001").mkdir()
    (run / "epoch_001" / "meta.json").write_text('{"epoch": 1}')
    assert push(run) == 1
    assert remote_exists(run / "epoch_001") and not remote_exists(run / "epoch_002")

    import shutil

    shutil.rmtree(run / "epoch_000")  # pruned: delete=True removes it from the bucket too
    assert push(run, delete=True) == 0
    assert set(keys("mirror/run/")) == {"epoch_001/meta.json", "pixelcam_run.json"}

    shutil.rmtree(stage)  # another machine: nothing staged
    pull(run, skip=WEIGHT_FILES)
    assert (run / "epoch_001" / "meta.json").read_text() == '{"epoch": 1}'
    (run / "epoch_001" / "meta.json").write_text('{"epoch": 9}')  # same size: kept unless refreshed
    pull(run)
    assert (run / "epoch_001" / "meta.json").read_text() == '{"epoch": 9}'
    pull(run, refresh=True)
    assert (run / "epoch_001" / "meta.json").read_text() == '{"epoch": 1}'
    assert not list(run.rglob(".*"))  # no temporaries of the downloads left


def test_weights_are_pulled_only_when_asked(s3, stage: Path):
    ck = stage_of("s3://lab/mirror/weights/epoch_003")
    ck.mkdir(parents=True)
    for name in (*WEIGHT_FILES, "meta.json"):
        (ck / name).write_bytes(name.encode())
    push(ck)
    import shutil

    shutil.rmtree(stage)
    pull(ck.parent, skip=WEIGHT_FILES)
    assert sorted(p.name for p in ck.iterdir()) == ["meta.json"]
    pull(ck / "model.pt")  # a single file
    assert (ck / "model.pt").read_bytes() == b"model.pt"


def test_unstaged_paths_are_left_alone(tmp_path: Path, stage: Path):
    (tmp_path / "local").mkdir()
    assert push(tmp_path / "local") == 0
    assert pull(tmp_path / "local") == tmp_path / "local"


def test_unusable_locations_fail_in_one_line(s3):
    with pytest.raises(StorageError, match=r"s3://missing-bucket/x: bucket 'missing-bucket' not found"):
        check_uri("s3://missing-bucket/x")
    with pytest.raises(StorageError, match=r"nosuch://b/x: cannot open"):
        check_uri("nosuch://b/x")
    check_uri("s3://lab/anything")
