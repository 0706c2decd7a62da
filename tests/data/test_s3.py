"""A dataset on a real S3 protocol server on loopback (the `s3` fixture: moto's server mode), read back by
`open_dataset` with its manifest verified and by the evaluation path. Training and a study reading over S3
(Ray Data's read tasks on a cluster's nodes): `tests/cluster/test_local_cluster.py`."""

from __future__ import annotations

from pathlib import Path

from pixelcam.data import open_dataset
from pixelcam.runtime.data import iter_split


def test_dataset_read_over_s3_equals_the_local_one(s3: tuple[str, dict[str, str]], synth_dir: Path):
    uri, _ = s3
    local, remote = open_dataset(synth_dir), open_dataset(uri, verify=True)  # every file's hash checked
    assert remote.location == uri and remote.root.is_remote
    assert remote.manifest == local.manifest and remote.hash == local.hash
    assert remote.read_table(["synth-lymph"], ["test"]).equals(local.read_table(["synth-lymph"], ["test"]))
    a = [(b.image_ids, b.labels.tolist()) for b in iter_split(local, "synth-colon", "valpx", 64)]
    b = [(b.image_ids, b.labels.tolist()) for b in iter_split(remote, "synth-colon", "valpx", 64)]
    assert a == b and a
    assert remote.uris(["synth-colon"], ["train"]) == [f"{uri}/train/synth-colon.parquet"]
