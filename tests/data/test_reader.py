"""Integrity on open: each file's image count against the manifest (cheap, every open), and with `verify`
its SHA-256, the manifest's hash and no image id in two splits; each failure names the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pixelcam.cli import main
from pixelcam.data.errors import DatasetError
from pixelcam.data.reader import check_no_leaks, open_dataset
from pixelcam.data.synth import SynthConfig, generate_synthetic


@pytest.fixture(scope="module")
def ds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reader") / "ds"
    generate_synthetic(out, SynthConfig(domains=["synth-lymph"], per_class=12, size=32, seed=3), workers=1)
    return out


@pytest.fixture
def copy(ds_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(ds_dir, tmp_path / "ds")
    return tmp_path / "ds"


def test_swapped_split_files_are_caught_when_the_dataset_is_opened(copy: Path):
    train, test = copy / "train" / "synth-lymph.parquet", copy / "test" / "synth-lymph.parquet"
    train.rename(copy / "x")
    test.rename(train)
    (copy / "x").rename(test)
    with pytest.raises(DatasetError, match=r"synth-lymph.parquet: \d+ images, the manifest lists \d+ for it"):
        open_dataset(copy)


def test_a_test_image_copied_into_train_is_caught_when_opened(copy: Path):
    train, test = copy / "train" / "synth-lymph.parquet", copy / "test" / "synth-lymph.parquet"
    extra = pq.read_table(test).slice(0, 1)
    pq.write_table(pa.concat_tables([pq.read_table(train), extra.cast(pq.read_table(train).schema)]), train)
    with pytest.raises(DatasetError, match=rf"{train}: \d+ images, the manifest lists"):
        open_dataset(copy)


def test_an_image_in_two_splits_is_a_leak_named_by_verify(copy: Path):
    """Same counts (a train row replaced by a test image): the file's size gives it away at open; with the
    manifest's size edited to match, the leak check and the content hashes still see it."""
    import json

    train, test = copy / "train" / "synth-lymph.parquet", copy / "test" / "synth-lymph.parquet"
    rows = pq.read_table(train)
    leaked = pq.read_table(test).slice(0, 1).cast(rows.schema)
    pq.write_table(pa.concat_tables([rows.slice(1), leaked]), train)
    with pytest.raises(DatasetError, match=rf"{train}: \d+ bytes, the manifest records \d+"):
        open_dataset(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["domains"]["synth-lymph"]["bytes"]["train/synth-lymph.parquet"] = train.stat().st_size
    (copy / "manifest.json").write_text(json.dumps(manifest))
    ds = open_dataset(copy)  # the counts and sizes match now
    with pytest.raises(DatasetError, match=r"image '.*' is also in split 'test'|is also in split 'train'"):
        check_no_leaks(ds)
    with pytest.raises(DatasetError, match="SHA-256 mismatch"):
        open_dataset(copy, verify=True)


def test_verify_says_ok_in_one_line(ds_dir: Path, capsys: pytest.CaptureFixture):
    assert main(["data", "inspect", str(ds_dir), "--verify"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("verify: ok (4 files: SHA-256 and image counts as the manifest lists")
    check_no_leaks(open_dataset(ds_dir))  # a written dataset has none


def test_a_rewritten_file_is_caught_by_its_size_when_the_dataset_is_opened(tmp_path: Path):
    """The manifest records each file's byte size; every open compares them (one stat per file): a file
    rewritten with as many rows (here: the same rows, uncompressed) is caught without reading it."""
    import json

    cfg = SynthConfig(domains=["synth-lymph"], per_class=10, size=32)
    generate_synthetic(tmp_path / "ds", cfg, workers=1)
    info = json.loads((tmp_path / "ds" / "manifest.json").read_text())["domains"]["synth-lymph"]
    assert info["bytes"] == {r: (tmp_path / "ds" / r).stat().st_size for r in info["files"]}
    f = tmp_path / "ds" / "test" / "synth-lymph.parquet"
    pq.write_table(pq.read_table(f), f, compression="none")
    with pytest.raises(
        DatasetError, match=rf"{f}: \d+ bytes, the manifest records \d+: truncated or changed"
    ):
        open_dataset(tmp_path / "ds")


def test_stored_bytes_are_the_files_sizes_from_the_manifest_or_the_filesystem(synth_dir: Path):
    ds = open_dataset(synth_dir)
    on_disk = (synth_dir / "train" / "synth-colon.parquet").stat().st_size
    assert ds.stored_bytes(["synth-colon"], ["train"]) == on_disk
    both = sum((synth_dir / s / "synth-colon.parquet").stat().st_size for s in ("train", "test"))
    assert ds.stored_bytes(["synth-colon"], ["train", "test"]) == both
    ds.manifest["domains"]["synth-colon"].pop("bytes")  # a dataset written before sizes were recorded
    assert ds.stored_bytes(["synth-colon"], ["train"]) == on_disk
