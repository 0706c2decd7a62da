from pathlib import Path

import pytest

from pixelcam.cli import main
from pixelcam.data import open_dataset
from pixelcam.data.errors import DatasetError
from pixelcam.data.merge import merge_datasets
from pixelcam.data.synth import SynthConfig, generate_synthetic


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("merge")
    a, b = root / "a", root / "b"
    generate_synthetic(a, SynthConfig(domains=["synth-colon"], per_class=12, size=32, seed=1), workers=1)
    generate_synthetic(b, SynthConfig(domains=["synth-lymph"], per_class=12, size=32, seed=2), workers=1)
    return a, b


def test_merge_keeps_every_domain_and_row(two_sets: tuple[Path, Path], tmp_path: Path):
    a, b = two_sets
    out = merge_datasets([a, b], tmp_path / "ab")
    ds = open_dataset(out)
    assert ds.domains == ["synth-colon", "synth-lymph"]
    for src in (a, b):
        one = open_dataset(src)
        d = one.domains[0]
        assert ds.manifest["domains"][d]["counts"] == one.manifest["domains"][d]["counts"]
        assert (out / f"train/{d}.parquet").read_bytes() == (src / f"train/{d}.parquet").read_bytes()
    assert ds.hash not in (open_dataset(a).hash, open_dataset(b).hash)
    assert main(["data", "merge", str(a), str(b), "--out", str(out)]) == 2  # exists, no --overwrite
    assert main(["data", "merge", str(a), str(b), "--out", str(out), "--overwrite"]) == 0


def test_merge_refuses_duplicate_domains_and_writes_nothing(two_sets: tuple[Path, Path], tmp_path: Path):
    a, _ = two_sets
    with pytest.raises(DatasetError, match="'synth-colon' is in both"):
        merge_datasets([a, a], tmp_path / "aa")
    assert not (tmp_path / "aa").exists() and not list(tmp_path.glob(".aa*"))
    with pytest.raises(DatasetError, match="at least two"):
        merge_datasets([a], tmp_path / "x")
