"""Datasets behind a URI (s3://, gs://, file://) are read through pyarrow filesystems; `file://` exercises the
same code path with a real pyarrow LocalFileSystem."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pixelcam.data import open_dataset
from pixelcam.data.errors import DatasetError
from pixelcam.data.reader import is_uri
from pixelcam.runtime.data import iter_split


def test_file_uri_reads_the_same_rows_as_the_local_path(synth_dir: Path):
    local, remote = open_dataset(synth_dir), open_dataset(synth_dir.as_uri(), verify=True)
    assert not remote.root.is_remote and remote.location == synth_dir.as_uri()
    assert remote.manifest == local.manifest and remote.domains == local.domains
    assert remote.read_table(["synth-colon"], ["valpx"]).equals(local.read_table(["synth-colon"], ["valpx"]))
    a = [b.image_ids for b in iter_split(local, "synth-lymph", "test", 32)]
    b = [b.image_ids for b in iter_split(remote, "synth-lymph", "test", 32)]
    assert a == b and a
    uris = remote.uris(["synth-colon"], ["train"])
    assert uris == [f"{synth_dir.as_uri()}/train/synth-colon.parquet"] and all(is_uri(u) for u in uris)
    assert pq.read_table(uris[0]).num_rows == local.read_table(["synth-colon"], ["train"]).num_rows


def test_bad_uris_name_the_location(tmp_path: Path):
    with pytest.raises(DatasetError, match=r"file://.*manifest.json missing"):
        open_dataset(tmp_path.as_uri())
    with pytest.raises(DatasetError, match="nosuchscheme://bucket/ds: cannot open"):
        open_dataset("nosuchscheme://bucket/ds")
