from pathlib import Path

import pytest

from pixelcam.data import DatasetError, open_dataset
from pixelcam.data.ingest import ingest
from pixelcam.data.png import decode_mask
from tests.data.ingest.fixtures import make_camelyon


def test_camelyon16_folds(tmp_path: Path):
    folds = make_camelyon(tmp_path / "c16")
    ingest("camelyon16", tmp_path / "out", root=str(tmp_path / "c16"), folds=str(folds))
    ds = open_dataset(tmp_path / "out")
    assert ds.class_names("camelyon16") == ["normal", "tumor"]
    assert ds.counts("camelyon16")["valpx"] == {"normal": 6, "tumor": 6}
    for r in ds.read_table().to_pylist():
        m = decode_mask(r["mask"])  # normal patches: all-background mask
        assert (m.sum() > 0) == (r["label"] == 1)
        if r["label"]:
            assert m.sum() == 64


def test_camelyon16_draws_valpx_from_valcl_by_seed(tmp_path: Path):
    folds = make_camelyon(tmp_path / "c16", with_valpx=False)
    kw = dict(root=str(tmp_path / "c16"), folds=str(folds))
    ingest("camelyon16", tmp_path / "a", seed=1, **kw)
    ingest("camelyon16", tmp_path / "b", seed=1, **kw)
    ingest("camelyon16", tmp_path / "c", seed=2, **kw)
    a, b, c = (open_dataset(tmp_path / x) for x in "abc")
    assert a.counts("camelyon16")["valpx"] == {"normal": 6, "tumor": 6}
    # valpx is drawn from valcl and stays in it (the protocol: valpx is a subset of valcl)
    assert a.counts("camelyon16")["valcl"] == {"normal": 8, "tumor": 8}
    ids = {
        x: set(d.read_table(splits=["valpx"]).column("image_id").to_pylist())
        for x, d in zip("abc", (a, b, c))
    }
    assert ids["a"] == ids["b"] != ids["c"]


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    "breakage, message",
    [
        (
            lambda f, r: _edit(f / "test/class_labels.txt", ",1", ",7"),
            r"test/class_labels.txt:2: unknown label '7'",
        ),
        (
            lambda f, r: (r / "patches/normal/train_1.png").unlink(),
            r"patches/normal/train_1.png: image file not found \(listed in .*train/image_ids.txt:3\)",
        ),
        (
            lambda f, r: _edit(f / "valcl/image_sizes.txt", "16,16", "512,512"),
            r"valcl/image_sizes.txt:1: says patches/normal/valcl_0.png is 512x512, but .* is 16x16",
        ),
        (
            lambda f, r: _edit(f / "test/localization.txt", "masks/test_0.png", ""),
            r"test/image_ids.txt:2: patches/tumor/test_0.png \(class 1, which has an ROI\) is in split "
            r"'test' without a mask",
        ),
        (
            lambda f, r: [
                (f / "valcl" / n).write_text((f / "valcl" / n).read_text() + line)
                for n, line in (
                    ("image_ids.txt", "patches/normal/train_0.png\n"),
                    ("class_labels.txt", "patches/normal/train_0.png,0\n"),
                )
            ],
            r"duplicate image 'patches/normal/train_0.png': listed in .*train/image_ids.txt:1 "
            r"and in "
            r".*valcl/image_ids.txt:17",
        ),
        (
            lambda f, r: [p.unlink() for p in (f / "test").iterdir()] and (f / "test").rmdir(),
            r"test: fold folder missing",
        ),
    ],
)
def test_camelyon16_bad_input(tmp_path: Path, breakage, message):
    folds = make_camelyon(tmp_path / "c16")
    breakage(folds, tmp_path / "c16")
    with pytest.raises(DatasetError, match=message):
        ingest("camelyon16", tmp_path / "out", root=str(tmp_path / "c16"), folds=str(folds))
    assert not (tmp_path / "out").exists()


def test_camelyon16_too_few_for_valpx(tmp_path: Path):
    folds = make_camelyon(tmp_path / "c16", with_valpx=False, per_split={"train": 2, "valcl": 3, "test": 2})
    with pytest.raises(DatasetError, match="valcl: 3 usable normal images, need 6"):
        ingest("camelyon16", tmp_path / "out", root=str(tmp_path / "c16"), folds=str(folds))
