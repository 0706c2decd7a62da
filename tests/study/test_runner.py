"""Where a study works and what may be resumed, checked before Ray starts: local directories (only the
user's own: resuming unpickles Tune's state), and studies stored on an S3 protocol server (written there
directly, a name already taken in the bucket, a URI that holds no study, a bucket that does not exist)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelcam.errors import StorageError, StudyError
from pixelcam.storage import Location
from pixelcam.study.runner import open_study_directory, study_directory
from pixelcam.study.spec import spec_from_dict


def _study(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "spec.yaml").write_text("name: s\n")
    (d / "state.json").write_text("{}")
    return d


def _spec(storage: str):
    return spec_from_dict(
        {"name": "s", "sources": ["synth-colon"], "methods": ["cam"], "storage": storage, "data": "x"},
        "t.yaml",
    )


def test_only_the_users_own_study_directory_is_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    d = _study(tmp_path / "s")
    assert open_study_directory(str(d)) == Location(d)
    owner = d.stat().st_uid
    monkeypatch.setattr("os.getuid", lambda: owner + 1)  # another user resuming it
    with pytest.raises(StudyError, match=rf"owned by uid {owner}, not by you .*trusted like code"):
        open_study_directory(str(d))
    with pytest.raises(StudyError, match="not a study directory"):
        open_study_directory(str(tmp_path))


def test_local_study_names_are_not_reused(tmp_path: Path):
    assert study_directory(_spec(str(tmp_path))) == Location(tmp_path / "s")
    _study(tmp_path / "s")
    with pytest.raises(StudyError, match=r"exists: `pixelcam study resume .*/s` continues it"):
        study_directory(_spec(str(tmp_path)))


def test_a_study_on_s3_is_its_bucket_prefix(s3, tmp_path: Path):
    uri = "s3://lab/runner-test/s"
    assert study_directory(_spec("s3://lab/runner-test")) == Location(uri)
    with pytest.raises(StudyError, match=rf"{uri}: not a study directory \(spec.yaml and state.json"):
        open_study_directory(uri)
    (Location(uri) / "spec.yaml").write_text("name: s\n")
    (Location(uri) / "state.json").write_json({})
    with pytest.raises(StudyError, match=rf"{uri} exists: `pixelcam study resume {uri}` continues it"):
        study_directory(_spec("s3://lab/runner-test"))
    assert open_study_directory(uri + "/") == Location(uri)
    assert not list(tmp_path.iterdir())  # nothing local: no stage, no copy
    with pytest.raises(StorageError, match="bucket 'nobucket' not found"):
        open_study_directory("s3://nobucket/s")
    with pytest.raises(StorageError, match="bucket 'nobucket' not found"):
        study_directory(_spec("s3://nobucket/studies"))
