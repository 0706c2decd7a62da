from pathlib import Path

import numpy as np
import pytest

from pixelcam.data import DatasetError, DatasetWriter, Patch, open_dataset
from pixelcam.data.png import encode_png


def patch(i: int, split: str, label: int = 0, domain: str = "d") -> Patch:
    img = encode_png(np.full((8, 8, 3), i, np.uint8))
    mask = encode_png(np.full((8, 8), label, np.uint8))
    return Patch(f"id{i}", domain, split, label, ["normal", "cancer"][label], img, mask, 8, 8, f"src{i}")


def full(w: DatasetWriter) -> None:
    w.add_domain("d", ["normal", "cancer"])
    for i, s in enumerate(["train", "valcl", "valpx", "test"]):
        w.write(patch(2 * i, s, 0))
        w.write(patch(2 * i + 1, s, 1))


def test_roundtrip_and_manifest(tmp_path: Path):
    with DatasetWriter(tmp_path / "ds") as w:
        full(w)
    ds = open_dataset(tmp_path / "ds", verify=True)
    assert ds.counts("d")["valpx"] == {"normal": 1, "cancer": 1}
    assert ds.read_table(splits=["test"]).column("image_id").to_pylist() == ["id6", "id7"]
    assert len(ds.hash) == 64


def test_exception_leaves_nothing_behind(tmp_path: Path):
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "ds") as w:
            full(w)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_duplicate_ids_and_empty_split(tmp_path: Path):
    with pytest.raises(DatasetError, match="duplicate image_id 'id0': from src0 and from src0"):
        with DatasetWriter(tmp_path / "ds") as w:
            full(w)
            w.write(patch(0, "train"))
    with pytest.raises(DatasetError, match="split 'valcl' is empty"):
        with DatasetWriter(tmp_path / "ds") as w:
            w.add_domain("d", ["normal", "cancer"])
            for i, s in enumerate(["train", "valpx", "test"]):
                w.write(patch(i, s, 1))
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_dataset(tmp_path: Path):
    with DatasetWriter(tmp_path / "ds") as w:
        full(w)
    before = open_dataset(tmp_path / "ds").hash
    with pytest.raises(DatasetError, match="already exists"):
        DatasetWriter(tmp_path / "ds").__enter__()
    with pytest.raises(DatasetError, match="label 1 / 'normal' does not match"):
        with DatasetWriter(tmp_path / "ds", overwrite=True) as w:
            w.add_domain("d", ["normal", "cancer"])
            w.write(Patch("x", "d", "train", 1, "normal", b"", None, 1, 1, "bad.png"))
    assert open_dataset(tmp_path / "ds").hash == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_reader_errors_name_the_file(tmp_path: Path):
    with pytest.raises(DatasetError, match="not a pixelcam dataset"):
        open_dataset(tmp_path)
    with DatasetWriter(tmp_path / "ds") as w:
        full(w)
    (tmp_path / "ds" / "test" / "d.parquet").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"test/d.parquet: not a readable Parquet file"):
        open_dataset(tmp_path / "ds")
    (tmp_path / "ds" / "test" / "d.parquet").unlink()
    with pytest.raises(DatasetError, match=r"test/d.parquet: listed in .* but missing"):
        open_dataset(tmp_path / "ds")
