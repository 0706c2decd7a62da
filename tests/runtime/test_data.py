from pathlib import Path

import pytest

from pixelcam.data import DatasetError, open_dataset
from pixelcam.runtime.data import check_splits, iter_split


def test_rank_shares_cover_the_split_once(synth_dir: Path):
    ds = open_dataset(synth_dir)
    whole = [i for b in iter_split(ds, "synth-colon", "valcl", 32, batch_size=5) for i in b.image_ids]
    shares = [
        [
            i
            for b in iter_split(ds, "synth-colon", "valcl", 32, batch_size=5, rank=r, world=3)
            for i in b.image_ids
        ]
        for r in range(3)
    ]
    assert sorted(sum(shares, [])) == sorted(whole) and len(whole) == sum(
        ds.counts("synth-colon")["valcl"].values()
    )
    assert all(abs(len(s) - len(whole) / 3) <= 1 for s in shares)


def test_batches_are_normalised_images_and_full_size_masks(synth_dir: Path):
    ds = open_dataset(synth_dir)
    b = next(iter(iter_split(ds, "synth-lymph", "valpx", 48, batch_size=4)))
    assert b.images.shape == (4, 3, 48, 48) and b.labels.dtype.is_floating_point is False
    assert all(m is not None and m.shape == (64, 64) for m in b.masks)
    assert -3 < float(b.images.min()) < float(b.images.max()) < 3


def test_check_splits_errors(synth_dir: Path, tmp_path: Path):
    ds = open_dataset(synth_dir)
    with pytest.raises(DatasetError, match="unknown domain 'colon'"):
        check_splits(ds, "colon", ("train",))
    empty = open_dataset(synth_dir)  # a manifest whose valcl split is empty (opening would refuse the file)
    empty.manifest["domains"]["synth-colon"]["counts"]["valcl"] = {}
    with pytest.raises(DatasetError, match="source domain 'synth-colon' has an empty 'valcl' split"):
        check_splits(empty, "synth-colon", ("train", "valcl"))
