from pathlib import Path

import pytest

from pixelcam.data import DatasetError, open_dataset
from pixelcam.data.ingest import ingest
from tests.data.ingest.fixtures import make_folder


def test_folder_ingest(tmp_path: Path):
    csv = make_folder(tmp_path / "f")
    ingest("folder", tmp_path / "out", root=str(tmp_path / "f"), labels=str(csv), domain="mine")
    ds = open_dataset(tmp_path / "out")
    assert ds.domains == ["mine"]
    assert all(
        ds.counts("mine")[s] == {"normal": 1, "cancer": 1} for s in ("train", "valcl", "valpx", "test")
    )


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    "breakage, message",
    [
        (
            lambda c: _edit(c, ",cancer,", ",tumour,"),
            r"labels.csv:3: unknown label 'tumour'; expected one of",
        ),
        (lambda c: _edit(c, ",valcl,", ",val,"), r"labels.csv:4: unknown split 'val'"),
        (
            lambda c: c.write_text(c.read_text() + "images/train_normal.png,normal,train,\n"),
            r"duplicate image 'images/train_normal.png': listed in .*labels.csv:2 and in .*labels.csv:10",
        ),
        (lambda c: c.write_text("image,label\n"), r"columns \['split'\] missing"),
        (lambda c: (c.parent / "images/test_normal.png").unlink(), r"test_normal.png: image file not found"),
        (
            lambda c: (c.parent / "masks/valpx_cancer.png").write_bytes(b"\x89PNG broken"),
            r"valpx_cancer.png: cannot decode mask",
        ),
        (
            lambda c: c.write_text(
                "\n".join(line for line in c.read_text().splitlines() if ",valcl," not in line)
            ),
            r"split 'valcl' is empty",
        ),
    ],
)
def test_folder_bad_input(tmp_path: Path, breakage, message):
    csv = make_folder(tmp_path / "f")
    breakage(csv)
    with pytest.raises(DatasetError, match=message):
        ingest("folder", tmp_path / "out", root=str(tmp_path / "f"), labels=str(csv), domain="mine")
    assert not (tmp_path / "out").exists()
